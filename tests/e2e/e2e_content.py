# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build staging's content and production's own state through Directus' REST API (never SQL).

Everything here goes through the public API of a running Directus, the way editors and admins create
it, so the database rows and bucket objects are exactly what Directus itself writes.
"""

from __future__ import annotations

from e2e_images import png

__all__ = ["seed_staging", "seed_prod", "create_author"]

SHARED_AUTHOR = "author@example.com"   # exists in both environments (different ids): user refs map by email
EDITOR_ROLE = "Editor"                 # exists in both environments (different ids): remapped by name
EDITING_POLICY = "Content editing"     # idem; prod's editor holds it as a user-level policy
THUMBNAILS = ({"width": 64}, {"width": 32, "height": 32, "fit": "cover"}, {"key": "system-small-cover"})

PK_INT = {"field": "id", "type": "integer", "meta": {"hidden": True, "readonly": True, "interface": "input"},
          "schema": {"is_primary_key": True, "has_auto_increment": True}}
PK_UUID = {"field": "id", "type": "uuid", "meta": {"hidden": True, "readonly": True, "interface": "input",
                                                   "special": ["uuid"]},
           "schema": {"is_primary_key": True, "length": 36, "has_auto_increment": False}}


def _field(name, type_, interface="input", special=None, schema=None, **meta):
    spec = {"field": name, "type": type_, "meta": dict(meta, interface=interface), "schema": schema or {}}
    if special:
        spec["meta"]["special"] = special
    return spec


def create_collections(api):
    api.post("/collections", {
        "collection": "categories", "meta": {"icon": "label", "note": "Article categories", "sort_field": "sort"},
        "schema": {},
        "fields": [PK_INT,
                   _field("name", "string", schema={"is_nullable": False, "max_length": 120}),
                   _field("slug", "string", schema={"is_unique": True, "max_length": 120}),
                   _field("sort", "integer", hidden=True)]})
    api.post("/collections", {
        "collection": "articles", "meta": {"icon": "article", "display_template": "{{title}}",
                                           "archive_field": "status", "archive_value": "archived"},
        "schema": {},
        "fields": [PK_UUID,
                   _field("status", "string", interface="select-dropdown",
                          schema={"default_value": "draft", "is_nullable": False},
                          options={"choices": [{"text": "Draft", "value": "draft"},
                                               {"text": "Published", "value": "published"},
                                               {"text": "Archived", "value": "archived"}]}),
                   _field("title", "string", schema={"is_nullable": False}),
                   _field("body", "text", interface="input-rich-text-html"),
                   _field("published_on", "date", interface="datetime"),
                   _field("rating", "decimal", schema={"numeric_precision": 5, "numeric_scale": 2}),
                   _field("views", "integer", schema={"default_value": 0}),
                   _field("featured", "boolean", interface="boolean", special=["cast-boolean"],
                          schema={"default_value": False}),
                   _field("metadata", "json", interface="input-code", special=["cast-json"]),
                   _field("date_created", "timestamp", interface="datetime", special=["date-created"],
                          readonly=True, hidden=True),
                   _field("user_created", "uuid", interface="select-dropdown-m2o", special=["user-created"],
                          readonly=True, hidden=True),
                   _field("category", "integer", interface="select-dropdown-m2o", special=["m2o"]),
                   _field("cover", "uuid", interface="file-image", special=["file"])]})
    api.post("/collections", {
        "collection": "site_settings", "meta": {"singleton": True, "icon": "settings"}, "schema": {},
        "fields": [PK_INT, _field("tagline", "string"), _field("footer", "text")]})
    api.post("/relations", {"collection": "articles", "field": "user_created", "related_collection": "directus_users",
                            "schema": {"on_delete": "SET NULL"}})
    api.post("/relations", {"collection": "articles", "field": "category", "related_collection": "categories",
                            "meta": {"one_field": "articles"}, "schema": {"on_delete": "SET NULL"}})
    api.post("/fields/categories", {"field": "articles", "type": "alias",
                                    "meta": {"interface": "list-o2m", "special": ["o2m"]}})
    api.post("/relations", {"collection": "articles", "field": "cover", "related_collection": "directus_files",
                            "schema": {"on_delete": "SET NULL"}})
    # A custom field on directus_users: a column production's (kept) users table does not have.
    api.post("/fields/directus_users", {"field": "nickname", "type": "string", "meta": {"interface": "input"},
                                        "schema": {"max_length": 64}})


def create_access(api):
    """Policies with permissions, the Editor role holding one of them. Returns {name: id}."""
    editing = api.post("/policies", {"name": EDITING_POLICY, "icon": "edit", "app_access": True,
                                     "admin_access": False, "description": "create and edit articles"})
    reading = api.post("/policies", {"name": "Reading", "icon": "menu_book", "app_access": True,
                                     "admin_access": False})
    for collection in ("articles", "categories", "directus_files", "directus_folders"):
        api.post("/permissions", {"policy": reading["id"], "collection": collection, "action": "read",
                                  "fields": ["*"], "permissions": {}})
    for action in ("create", "update"):
        api.post("/permissions", {"policy": editing["id"], "collection": "articles", "action": action,
                                  "fields": ["*"] if action == "create" else ["title", "body", "status", "category", "cover"],
                                  "permissions": {} if action == "create" else {"status": {"_neq": "archived"}}})
    role = api.post("/roles", {"name": EDITOR_ROLE, "icon": "edit",
                               "policies": [{"policy": reading["id"]}, {"policy": editing["id"]}]})
    return {"editing": editing["id"], "reading": reading["id"], "role": role["id"]}


def create_flow(api):
    flow = api.post("/flows", {"name": "Log new articles", "icon": "bolt", "status": "active", "trigger": "event",
                               "accountability": "all",
                               "options": {"type": "action", "scope": ["items.create"], "collections": ["articles"]}})
    operation = api.post("/operations", {"flow": flow["id"], "key": "log_it", "name": "Log it", "type": "log",
                                         "position_x": 19, "position_y": 1,
                                         "options": {"message": "article {{$trigger.key}} created"}})
    api.patch("/flows/%s" % flow["id"], {"operation": operation["id"]})
    return flow["id"]


def upload_files(api):
    """Folders and files; thumbnails requested through /assets so Directus stores them in the bucket."""
    images = api.post("/folders", {"name": "Images"})
    covers = api.post("/folders", {"name": "Covers", "parent": images["id"]})
    docs = api.post("/folders", {"name": "Documents"})
    files = []
    for index, (width, height, folder) in enumerate(((160, 90, covers), (120, 120, covers), (64, 200, images))):
        files.append(api.upload("image-%d.png" % index, png(width, height, index + 1), "image/png",
                                title="Image %d" % index, folder=folder["id"]))
    files.append(api.upload("readme.txt", b"Plain text asset\n" * 40, "text/plain", title="Readme",
                            folder=docs["id"]))
    for item in files:
        if item["type"].startswith("image/"):
            for params in THUMBNAILS:
                resp = api.asset(item["id"], **params)
                assert resp.status == 200, (item["id"], params, resp.status)
    return files


def seed_staging(admin, author_password):
    """admin: logged-in DirectusClient of staging. Returns a summary of what was created."""
    create_collections(admin)
    access = create_access(admin)
    create_author(admin, author_password, access["role"])
    author = admin.as_token(None).login(SHARED_AUTHOR, author_password)
    files = upload_files(admin)
    images = [f for f in files if f["type"].startswith("image/")]
    categories = admin.post("/items/categories", [
        {"name": "News", "slug": "news", "sort": 1},
        {"name": "Guides", "slug": "guides", "sort": 2},
        {"name": "Releases", "slug": "releases", "sort": 3}])
    flow = create_flow(admin)
    articles = []
    for index in range(6):
        client = author if index % 2 else admin  # user_created: staging admin (no match in prod) or the author
        articles.append(client.post("/items/articles", {
            "title": "Article %d" % index, "body": "<p>Body of article %d</p>" % index,
            "status": ("draft", "published")[index % 2], "published_on": "2026-0%d-1%d" % (index % 9 + 1, index),
            "rating": "%d.%d5" % (index, index), "views": index * 10, "featured": index == 2,
            "metadata": {"seo": {"index": bool(index % 2)}, "n": index},
            "category": categories[index % 3]["id"], "cover": images[index % len(images)]["id"]}))
    admin.patch("/items/site_settings", {"tagline": "Promoted from staging", "footer": "(c) staging"})
    admin.post("/translations", {"language": "en-US", "key": "greeting", "value": "Hello from staging"})
    admin.post("/presets", {"collection": "articles", "layout": "tabular", "bookmark": None,
                            "layout_query": {"tabular": {"fields": ["title", "status", "category"]}}})
    admin.patch("/settings", {"project_name": "Staging CMS"})
    return {"access": access, "files": files, "flow": flow, "articles": [a["id"] for a in articles]}


def create_author(admin, password, role_id=None):
    return admin.post("/users", {"email": SHARED_AUTHOR, "password": password, "first_name": "Shared",
                                 "last_name": "Author", "role": role_id})


def seed_prod(admin, editor_email, editor_password):
    """Production's own state: its Editor role and Content editing policy (own ids), a prod-only editor
    with the policy at user level (plus the role), its own settings, a prod-only file to be pruned."""
    editing = admin.post("/policies", {"name": EDITING_POLICY, "icon": "edit", "app_access": True,
                                       "admin_access": False})
    role = admin.post("/roles", {"name": EDITOR_ROLE, "icon": "edit"})
    editor = admin.post("/users", {"email": editor_email, "password": editor_password, "first_name": "Prod",
                                   "last_name": "Editor", "role": role["id"],
                                   "policies": [{"policy": editing["id"]}]})
    admin.patch("/settings", {"project_name": "Production CMS"})
    old = admin.upload("old-banner.png", png(90, 30, 99), "image/png", title="Old banner")
    assert admin.asset(old["id"], width=40).status == 200
    # the editor's own upload: a file row that only a kept row (directus_users.avatar) references
    avatar = admin.upload("editor-avatar.png", png(48, 48, 77), "image/png", title="Editor avatar")
    admin.patch("/users/%s" % editor["id"], {"avatar": avatar["id"]})
    assert admin.asset(avatar["id"], width=24).status == 200
    return {"editing": editing["id"], "role": role["id"], "editor": editor["id"], "old_file": old["id"],
            "avatar": avatar["id"]}
