# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Directus-11-shaped fixtures: a MariaDB database and matching S3 asset objects.

Builds, on a MariaDB/MySQL server reached through a PyMySQL connection owned by the caller,
a database shaped like a Directus 11.3 installation (the 27 ``directus_*`` system tables with
their real columns, indexes and foreign keys incl. the ON DELETE rules) plus user content
collections full of awkward values, and puts the matching asset objects into an S3 bucket.

Every environment is built separately, as two ``directus bootstrap`` runs would do it: the
admin user, admin role and admin policy get different UUIDs per environment (deterministic
from ``seed`` and ``env``); the Public policy has Directus' fixed id. Roles and policies that
were created on staging and promoted earlier share their ids. Users differ per environment
(same e-mail -> different id), so promotions have to map user references by e-mail.

Public API::

    build_directus_db(conn, database, env='staging', seed=0, content_rows=200, files=20, users=None,
                      extra_migrations=(), avatar_fk=False, batch_rows=2000, fast_load=True,
                      long_text_every=50, long_text_max=60) -> dict (expected_ids + rows + seconds)
    add_custom_user_field(conn, database, field='department') -> None
    staging_edit(conn, database, seed=0) -> {'updated': [...], 'added': [...], 'permissions_updated': n}
    table_checksums(conn, database, tables=None, method='content'|'checksum_table') -> {table: str}
    fk_violations(conn, database) -> {'table.constraint': dangling_rows}   (empty = consistent)
    describe(conn, database) -> dict (admin_user_id, admin_role_id, admin_policy_id, users, roles, ...)
    expected_ids(env='staging', seed=0, users=None) -> dict   (pure: the ids the builder uses)
    file_specs(env='staging', seed=0, files=20) -> [dict, ...]   (the directus_files plan)
    asset_keys(env='staging', seed=0, files=20, thumbnails=True) -> [key, ...]
    build_assets(s3_client, bucket, prefix='', files=20, seed=0, size_range=(1024, 4096),
                 thumbnails=True, env='staging', workers=8) -> [full key, ...]
    content_type(key) -> str ;  article_id(seed, i) -> str ;  awkward_rows(seed, count, creators)
    creator_ids(env, seed, users=None) -> [user id|None] ;  row_counts(content_rows) -> {table: rows}
    constants: PUBLIC_POLICY_ID, SYSTEM_TABLES, CONTENT_TABLES, MIGRATIONS, ASSET_CACHE_CONTROL

Values round-trip exactly as long as every connection uses ``time_zone='+00:00'`` for the
TIMESTAMP columns (the builder, staging_edit and table_checksums set it on their session).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import random
import re
import struct
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

PUBLIC_POLICY_ID = 'abf8a154-5b1c-4a46-ac9c-7300570f4f17'
ENVS = ('staging', 'prod')
STORAGE_LOCATION = 's3'

SYSTEM_TABLES = (
    'directus_access', 'directus_activity', 'directus_collections', 'directus_comments',
    'directus_dashboards', 'directus_extensions', 'directus_fields', 'directus_files',
    'directus_flows', 'directus_folders', 'directus_migrations', 'directus_notifications',
    'directus_operations', 'directus_panels', 'directus_permissions', 'directus_policies',
    'directus_presets', 'directus_relations', 'directus_revisions', 'directus_roles',
    'directus_sessions', 'directus_settings', 'directus_shares', 'directus_translations',
    'directus_users', 'directus_versions', 'directus_webhooks',
)
CONTENT_TABLES = ('authors', 'articles', 'tags', 'articles_tags', 'awkward_values')

# Migrations a Directus 11.3.x bootstrap records (version, name).
MIGRATIONS = (
    ('20201028A', 'Remove Collection Foreign Keys'), ('20201029A', 'Remove System Relations'),
    ('20201029B', 'Remove System Collections'), ('20201029C', 'Remove System Fields'),
    ('20201105A', 'Add Cascade System Relations'), ('20201105B', 'Change Webhook URL Type'),
    ('20210225A', 'Add Relations Sort Field'), ('20210304A', 'Remove Locked Fields'),
    ('20210312A', 'Webhooks Collections Text'), ('20210331A', 'Add Refresh Interval'),
    ('20210415A', 'Make Filesize Nullable'), ('20210416A', 'Add Collections Accountability'),
    ('20210422A', 'Remove Files Interface'), ('20210506A', 'Rename Interfaces'),
    ('20210510A', 'Restructure Relations'), ('20210518A', 'Add Foreign Key Constraints'),
    ('20210519A', 'Add System Fk Triggers'), ('20210521A', 'Add Collections Icon Color'),
    ('20210525A', 'Add Insights'), ('20210608A', 'Add Deep Clone Config'),
    ('20210626A', 'Change Filesize Bigint'), ('20210716A', 'Add Conditions to Fields'),
    ('20210721A', 'Add Default Folder'), ('20210802A', 'Replace Groups'),
    ('20210803A', 'Add Required to Fields'), ('20210805A', 'Update Groups'),
    ('20210805B', 'Change Image Metadata Structure'), ('20210811A', 'Add Geometry Config'),
    ('20210831A', 'Remove Limit Column'), ('20210903A', 'Add Auth Provider'),
    ('20210907A', 'Webhooks Collections Not Null'), ('20210910A', 'Move Module Setup'),
    ('20210920A', 'Webhooks URL Not Null'), ('20210924A', 'Add Collection Organization'),
    ('20210927A', 'Replace Fields Group'), ('20210927B', 'Replace M2M Interface'),
    ('20210929A', 'Rename Login Action'), ('20211007A', 'Update Presets'),
    ('20211009A', 'Add Auth Data'), ('20211016A', 'Add Webhook Headers'),
    ('20211103A', 'Set Unique to User Token'), ('20211103B', 'Update Special Geometry'),
    ('20211104A', 'Remove Collections Listing'), ('20211118A', 'Add Notifications'),
    ('20211211A', 'Add Shares'), ('20211230A', 'Add Project Descriptor'),
    ('20220303A', 'Remove Default Project Color'), ('20220308A', 'Add Bookmark Icon and Color'),
    ('20220314A', 'Add Translation Strings'), ('20220322A', 'Rename Field Typecast Flags'),
    ('20220323A', 'Add Field Validation'), ('20220325A', 'Fix Typecast Flags'),
    ('20220325B', 'Add Default Language'), ('20220402A', 'Remove Default Value Panel Icon'),
    ('20220429A', 'Add Flows'), ('20220429B', 'Add Color to Insights Icon'),
    ('20220429C', 'Drop Non Null From IP of Activity'),
    ('20220429D', 'Drop Non Null From Sender of Notifications'),
    ('20220614A', 'Rename Hook Trigger to Event'), ('20220801A', 'Update Notifications Timestamp Column'),
    ('20220802A', 'Add Custom Aspect Ratios'), ('20220826A', 'Add Origin to Accountability'),
    ('20230401A', 'Update Material Icons'), ('20230525A', 'Add Preview Settings'),
    ('20230526A', 'Migrate Translation Strings'), ('20230721A', 'Require Shares Fields'),
    ('20230823A', 'Add Content Versioning'), ('20230927A', 'Themes'),
    ('20231009A', 'Update CSV Fields to Text'), ('20231009B', 'Update Panel Options'),
    ('20231010A', 'Add Extensions'), ('20231215A', 'Add Focalpoints'),
    ('20240122A', 'Add Report URL Fields'), ('20240204A', 'Marketplace'),
    ('20240305A', 'Change Useragent Type'), ('20240311A', 'Deprecate Webhooks'),
    ('20240422A', 'Public Registration'), ('20240515A', 'Add Session Window'),
    ('20240701A', 'Add Tus Data'), ('20240716A', 'Update Files Date Fields'),
    ('20240806A', 'Permissions Policies'), ('20240817A', 'Update Icon Fields Length'),
    ('20240909A', 'Separate Comments'), ('20240909B', 'Consolidate Content Versioning'),
    ('20240924A', 'Migrate Legacy Comments'), ('20240924B', 'Populate Versioning Deltas'),
)

_TBL = ' ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci'
_UUID = 'char(36)'

# Column definitions follow Directus 11.3 on MariaDB (knex migrations); FK names are knex's.
SYSTEM_DDL = {
    'directus_access': """
  `id` char(36) NOT NULL,
  `role` char(36) DEFAULT NULL,
  `user` char(36) DEFAULT NULL,
  `policy` char(36) NOT NULL,
  `sort` int(11) DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `directus_access_role_foreign` (`role`),
  KEY `directus_access_user_foreign` (`user`),
  KEY `directus_access_policy_foreign` (`policy`),
  CONSTRAINT `directus_access_policy_foreign` FOREIGN KEY (`policy`) REFERENCES `directus_policies` (`id`) ON DELETE CASCADE,
  CONSTRAINT `directus_access_role_foreign` FOREIGN KEY (`role`) REFERENCES `directus_roles` (`id`) ON DELETE CASCADE,
  CONSTRAINT `directus_access_user_foreign` FOREIGN KEY (`user`) REFERENCES `directus_users` (`id`) ON DELETE CASCADE""",
    'directus_activity': """
  `id` int(10) unsigned NOT NULL AUTO_INCREMENT,
  `action` varchar(45) NOT NULL,
  `user` char(36) DEFAULT NULL,
  `timestamp` timestamp NOT NULL DEFAULT current_timestamp(),
  `ip` varchar(50) DEFAULT NULL,
  `user_agent` text DEFAULT NULL,
  `collection` varchar(64) NOT NULL,
  `item` varchar(255) NOT NULL,
  `origin` varchar(255) DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `directus_activity_collection_foreign` (`collection`)""",
    'directus_collections': """
  `collection` varchar(64) NOT NULL,
  `icon` varchar(64) DEFAULT NULL,
  `note` text DEFAULT NULL,
  `display_template` varchar(255) DEFAULT NULL,
  `hidden` tinyint(1) NOT NULL DEFAULT 0,
  `singleton` tinyint(1) NOT NULL DEFAULT 0,
  `translations` json DEFAULT NULL,
  `archive_field` varchar(64) DEFAULT NULL,
  `archive_app_filter` tinyint(1) NOT NULL DEFAULT 1,
  `archive_value` varchar(255) DEFAULT NULL,
  `unarchive_value` varchar(255) DEFAULT NULL,
  `sort_field` varchar(64) DEFAULT NULL,
  `accountability` varchar(255) DEFAULT 'all',
  `color` varchar(255) DEFAULT NULL,
  `item_duplication_fields` json DEFAULT NULL,
  `sort` int(11) DEFAULT NULL,
  `group` varchar(64) DEFAULT NULL,
  `collapse` varchar(255) NOT NULL DEFAULT 'open',
  `preview_url` varchar(255) DEFAULT NULL,
  `versioning` tinyint(1) NOT NULL DEFAULT 0,
  PRIMARY KEY (`collection`),
  KEY `directus_collections_group_foreign` (`group`),
  CONSTRAINT `directus_collections_group_foreign` FOREIGN KEY (`group`) REFERENCES `directus_collections` (`collection`)""",
    'directus_comments': """
  `id` char(36) NOT NULL,
  `collection` varchar(64) NOT NULL,
  `item` varchar(255) NOT NULL,
  `comment` text NOT NULL,
  `date_created` timestamp NULL DEFAULT current_timestamp(),
  `date_updated` timestamp NULL DEFAULT current_timestamp(),
  `user_created` char(36) DEFAULT NULL,
  `user_updated` char(36) DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `directus_comments_user_created_foreign` (`user_created`),
  KEY `directus_comments_user_updated_foreign` (`user_updated`),
  CONSTRAINT `directus_comments_user_created_foreign` FOREIGN KEY (`user_created`) REFERENCES `directus_users` (`id`) ON DELETE SET NULL,
  CONSTRAINT `directus_comments_user_updated_foreign` FOREIGN KEY (`user_updated`) REFERENCES `directus_users` (`id`)""",
    'directus_dashboards': """
  `id` char(36) NOT NULL,
  `name` varchar(255) NOT NULL,
  `icon` varchar(64) NOT NULL DEFAULT 'dashboard',
  `note` text DEFAULT NULL,
  `date_created` timestamp NULL DEFAULT current_timestamp(),
  `user_created` char(36) DEFAULT NULL,
  `color` varchar(255) DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `directus_dashboards_user_created_foreign` (`user_created`),
  CONSTRAINT `directus_dashboards_user_created_foreign` FOREIGN KEY (`user_created`) REFERENCES `directus_users` (`id`) ON DELETE SET NULL""",
    'directus_extensions': """
  `enabled` tinyint(1) NOT NULL DEFAULT 1,
  `id` char(36) NOT NULL,
  `folder` varchar(255) NOT NULL,
  `source` varchar(255) NOT NULL,
  `bundle` char(36) DEFAULT NULL,
  PRIMARY KEY (`id`)""",
    'directus_fields': """
  `id` int(10) unsigned NOT NULL AUTO_INCREMENT,
  `collection` varchar(64) NOT NULL,
  `field` varchar(64) NOT NULL,
  `special` varchar(64) DEFAULT NULL,
  `interface` varchar(64) DEFAULT NULL,
  `options` json DEFAULT NULL,
  `display` varchar(64) DEFAULT NULL,
  `display_options` json DEFAULT NULL,
  `readonly` tinyint(1) NOT NULL DEFAULT 0,
  `hidden` tinyint(1) NOT NULL DEFAULT 0,
  `sort` int(10) unsigned DEFAULT NULL,
  `width` varchar(30) DEFAULT 'full',
  `translations` json DEFAULT NULL,
  `note` text DEFAULT NULL,
  `conditions` json DEFAULT NULL,
  `required` tinyint(1) DEFAULT 0,
  `group` varchar(64) DEFAULT NULL,
  `validation` json DEFAULT NULL,
  `validation_message` text DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `directus_fields_collection_foreign` (`collection`)""",
    'directus_files': """
  `id` char(36) NOT NULL,
  `storage` varchar(255) NOT NULL,
  `filename_disk` varchar(255) DEFAULT NULL,
  `filename_download` varchar(255) NOT NULL,
  `title` varchar(255) DEFAULT NULL,
  `type` varchar(255) DEFAULT NULL,
  `folder` char(36) DEFAULT NULL,
  `uploaded_by` char(36) DEFAULT NULL,
  `created_on` timestamp NOT NULL DEFAULT current_timestamp(),
  `modified_by` char(36) DEFAULT NULL,
  `modified_on` timestamp NOT NULL DEFAULT current_timestamp(),
  `charset` varchar(50) DEFAULT NULL,
  `filesize` bigint(20) DEFAULT NULL,
  `width` int(10) unsigned DEFAULT NULL,
  `height` int(10) unsigned DEFAULT NULL,
  `duration` int(10) unsigned DEFAULT NULL,
  `embed` varchar(200) DEFAULT NULL,
  `description` text DEFAULT NULL,
  `location` text DEFAULT NULL,
  `tags` text DEFAULT NULL,
  `metadata` json DEFAULT NULL,
  `focal_point_x` int(11) DEFAULT NULL,
  `focal_point_y` int(11) DEFAULT NULL,
  `tus_id` varchar(64) DEFAULT NULL,
  `tus_data` json DEFAULT NULL,
  `uploaded_on` timestamp NULL DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `directus_files_uploaded_by_foreign` (`uploaded_by`),
  KEY `directus_files_modified_by_foreign` (`modified_by`),
  KEY `directus_files_folder_foreign` (`folder`),
  CONSTRAINT `directus_files_folder_foreign` FOREIGN KEY (`folder`) REFERENCES `directus_folders` (`id`) ON DELETE SET NULL,
  CONSTRAINT `directus_files_modified_by_foreign` FOREIGN KEY (`modified_by`) REFERENCES `directus_users` (`id`),
  CONSTRAINT `directus_files_uploaded_by_foreign` FOREIGN KEY (`uploaded_by`) REFERENCES `directus_users` (`id`)""",
    'directus_flows': """
  `id` char(36) NOT NULL,
  `name` varchar(255) NOT NULL,
  `icon` varchar(64) DEFAULT NULL,
  `color` varchar(255) DEFAULT NULL,
  `description` text DEFAULT NULL,
  `status` varchar(255) NOT NULL DEFAULT 'active',
  `trigger` varchar(255) DEFAULT NULL,
  `accountability` varchar(255) DEFAULT 'all',
  `options` json DEFAULT NULL,
  `operation` char(36) DEFAULT NULL,
  `date_created` timestamp NULL DEFAULT current_timestamp(),
  `user_created` char(36) DEFAULT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `directus_flows_operation_unique` (`operation`),
  KEY `directus_flows_user_created_foreign` (`user_created`),
  CONSTRAINT `directus_flows_user_created_foreign` FOREIGN KEY (`user_created`) REFERENCES `directus_users` (`id`) ON DELETE SET NULL""",
    'directus_folders': """
  `id` char(36) NOT NULL,
  `name` varchar(255) NOT NULL,
  `parent` char(36) DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `directus_folders_parent_foreign` (`parent`),
  CONSTRAINT `directus_folders_parent_foreign` FOREIGN KEY (`parent`) REFERENCES `directus_folders` (`id`)""",
    'directus_migrations': """
  `version` varchar(255) NOT NULL,
  `name` varchar(255) NOT NULL,
  `timestamp` timestamp NULL DEFAULT current_timestamp(),
  PRIMARY KEY (`version`)""",
    'directus_notifications': """
  `id` int(10) unsigned NOT NULL AUTO_INCREMENT,
  `timestamp` timestamp NULL DEFAULT current_timestamp(),
  `status` varchar(255) DEFAULT 'inbox',
  `recipient` char(36) NOT NULL,
  `sender` char(36) DEFAULT NULL,
  `subject` varchar(255) NOT NULL,
  `message` text DEFAULT NULL,
  `collection` varchar(64) DEFAULT NULL,
  `item` varchar(255) DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `directus_notifications_recipient_foreign` (`recipient`),
  KEY `directus_notifications_sender_foreign` (`sender`),
  CONSTRAINT `directus_notifications_recipient_foreign` FOREIGN KEY (`recipient`) REFERENCES `directus_users` (`id`) ON DELETE CASCADE,
  CONSTRAINT `directus_notifications_sender_foreign` FOREIGN KEY (`sender`) REFERENCES `directus_users` (`id`)""",
    'directus_operations': """
  `id` char(36) NOT NULL,
  `name` varchar(255) DEFAULT NULL,
  `key` varchar(255) NOT NULL,
  `type` varchar(255) NOT NULL,
  `position_x` int(11) NOT NULL,
  `position_y` int(11) NOT NULL,
  `options` json DEFAULT NULL,
  `resolve` char(36) DEFAULT NULL,
  `reject` char(36) DEFAULT NULL,
  `flow` char(36) NOT NULL,
  `date_created` timestamp NULL DEFAULT current_timestamp(),
  `user_created` char(36) DEFAULT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `directus_operations_resolve_unique` (`resolve`),
  UNIQUE KEY `directus_operations_reject_unique` (`reject`),
  KEY `directus_operations_flow_foreign` (`flow`),
  KEY `directus_operations_user_created_foreign` (`user_created`),
  CONSTRAINT `directus_operations_flow_foreign` FOREIGN KEY (`flow`) REFERENCES `directus_flows` (`id`) ON DELETE CASCADE,
  CONSTRAINT `directus_operations_reject_foreign` FOREIGN KEY (`reject`) REFERENCES `directus_operations` (`id`),
  CONSTRAINT `directus_operations_resolve_foreign` FOREIGN KEY (`resolve`) REFERENCES `directus_operations` (`id`),
  CONSTRAINT `directus_operations_user_created_foreign` FOREIGN KEY (`user_created`) REFERENCES `directus_users` (`id`) ON DELETE SET NULL""",
    'directus_panels': """
  `id` char(36) NOT NULL,
  `dashboard` char(36) NOT NULL,
  `name` varchar(255) DEFAULT NULL,
  `icon` varchar(64) DEFAULT NULL,
  `color` varchar(10) DEFAULT NULL,
  `show_header` tinyint(1) NOT NULL DEFAULT 0,
  `note` text DEFAULT NULL,
  `type` varchar(255) NOT NULL,
  `position_x` int(11) NOT NULL,
  `position_y` int(11) NOT NULL,
  `width` int(11) NOT NULL,
  `height` int(11) NOT NULL,
  `options` json DEFAULT NULL,
  `date_created` timestamp NULL DEFAULT current_timestamp(),
  `user_created` char(36) DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `directus_panels_dashboard_foreign` (`dashboard`),
  KEY `directus_panels_user_created_foreign` (`user_created`),
  CONSTRAINT `directus_panels_dashboard_foreign` FOREIGN KEY (`dashboard`) REFERENCES `directus_dashboards` (`id`) ON DELETE CASCADE,
  CONSTRAINT `directus_panels_user_created_foreign` FOREIGN KEY (`user_created`) REFERENCES `directus_users` (`id`) ON DELETE SET NULL""",
    'directus_permissions': """
  `id` int(10) unsigned NOT NULL AUTO_INCREMENT,
  `collection` varchar(64) NOT NULL,
  `action` varchar(10) NOT NULL,
  `permissions` json DEFAULT NULL,
  `validation` json DEFAULT NULL,
  `presets` json DEFAULT NULL,
  `fields` text DEFAULT NULL,
  `policy` char(36) NOT NULL,
  PRIMARY KEY (`id`),
  KEY `directus_permissions_collection_foreign` (`collection`),
  KEY `directus_permissions_policy_foreign` (`policy`),
  CONSTRAINT `directus_permissions_policy_foreign` FOREIGN KEY (`policy`) REFERENCES `directus_policies` (`id`) ON DELETE CASCADE""",
    'directus_policies': """
  `id` char(36) NOT NULL,
  `name` varchar(100) NOT NULL,
  `icon` varchar(64) NOT NULL DEFAULT 'badge',
  `description` text DEFAULT NULL,
  `ip_access` text DEFAULT NULL,
  `enforce_tfa` tinyint(1) NOT NULL DEFAULT 0,
  `admin_access` tinyint(1) NOT NULL DEFAULT 0,
  `app_access` tinyint(1) NOT NULL DEFAULT 0,
  PRIMARY KEY (`id`)""",
    'directus_presets': """
  `id` int(10) unsigned NOT NULL AUTO_INCREMENT,
  `bookmark` varchar(255) DEFAULT NULL,
  `user` char(36) DEFAULT NULL,
  `role` char(36) DEFAULT NULL,
  `collection` varchar(64) DEFAULT NULL,
  `search` varchar(100) DEFAULT NULL,
  `layout` varchar(100) DEFAULT 'tabular',
  `layout_query` json DEFAULT NULL,
  `layout_options` json DEFAULT NULL,
  `refresh_interval` int(11) DEFAULT NULL,
  `filter` json DEFAULT NULL,
  `icon` varchar(64) DEFAULT 'bookmark',
  `color` varchar(255) DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `directus_presets_collection_foreign` (`collection`),
  KEY `directus_presets_user_foreign` (`user`),
  KEY `directus_presets_role_foreign` (`role`),
  CONSTRAINT `directus_presets_role_foreign` FOREIGN KEY (`role`) REFERENCES `directus_roles` (`id`) ON DELETE CASCADE,
  CONSTRAINT `directus_presets_user_foreign` FOREIGN KEY (`user`) REFERENCES `directus_users` (`id`) ON DELETE CASCADE""",
    'directus_relations': """
  `id` int(10) unsigned NOT NULL AUTO_INCREMENT,
  `many_collection` varchar(64) NOT NULL,
  `many_field` varchar(64) NOT NULL,
  `one_collection` varchar(64) DEFAULT NULL,
  `one_field` varchar(64) DEFAULT NULL,
  `one_collection_field` varchar(64) DEFAULT NULL,
  `one_allowed_collections` text DEFAULT NULL,
  `junction_field` varchar(64) DEFAULT NULL,
  `sort_field` varchar(64) DEFAULT NULL,
  `one_deselect_action` varchar(255) NOT NULL DEFAULT 'nullify',
  PRIMARY KEY (`id`),
  KEY `directus_relations_many_collection_foreign` (`many_collection`),
  KEY `directus_relations_one_collection_foreign` (`one_collection`)""",
    'directus_revisions': """
  `id` int(10) unsigned NOT NULL AUTO_INCREMENT,
  `activity` int(10) unsigned NOT NULL,
  `collection` varchar(64) NOT NULL,
  `item` varchar(255) NOT NULL,
  `data` json DEFAULT NULL,
  `delta` json DEFAULT NULL,
  `parent` int(10) unsigned DEFAULT NULL,
  `version` char(36) DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `directus_revisions_collection_foreign` (`collection`),
  KEY `directus_revisions_parent_foreign` (`parent`),
  KEY `directus_revisions_activity_foreign` (`activity`),
  KEY `directus_revisions_version_foreign` (`version`),
  CONSTRAINT `directus_revisions_activity_foreign` FOREIGN KEY (`activity`) REFERENCES `directus_activity` (`id`) ON DELETE CASCADE,
  CONSTRAINT `directus_revisions_parent_foreign` FOREIGN KEY (`parent`) REFERENCES `directus_revisions` (`id`),
  CONSTRAINT `directus_revisions_version_foreign` FOREIGN KEY (`version`) REFERENCES `directus_versions` (`id`) ON DELETE CASCADE""",
    'directus_roles': """
  `id` char(36) NOT NULL,
  `name` varchar(100) NOT NULL,
  `icon` varchar(64) NOT NULL DEFAULT 'supervised_user_circle',
  `description` text DEFAULT NULL,
  `parent` char(36) DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `directus_roles_parent_foreign` (`parent`),
  CONSTRAINT `directus_roles_parent_foreign` FOREIGN KEY (`parent`) REFERENCES `directus_roles` (`id`)""",
    'directus_sessions': """
  `token` varchar(64) NOT NULL,
  `user` char(36) DEFAULT NULL,
  `expires` timestamp NOT NULL,
  `ip` varchar(255) DEFAULT NULL,
  `user_agent` text DEFAULT NULL,
  `share` char(36) DEFAULT NULL,
  `origin` varchar(255) DEFAULT NULL,
  `next_token` varchar(64) DEFAULT NULL,
  PRIMARY KEY (`token`),
  KEY `directus_sessions_user_foreign` (`user`),
  KEY `directus_sessions_share_foreign` (`share`),
  CONSTRAINT `directus_sessions_share_foreign` FOREIGN KEY (`share`) REFERENCES `directus_shares` (`id`) ON DELETE CASCADE,
  CONSTRAINT `directus_sessions_user_foreign` FOREIGN KEY (`user`) REFERENCES `directus_users` (`id`) ON DELETE CASCADE""",
    'directus_settings': """
  `id` int(10) unsigned NOT NULL AUTO_INCREMENT,
  `project_name` varchar(100) NOT NULL DEFAULT 'Directus',
  `project_url` varchar(255) DEFAULT NULL,
  `project_color` varchar(255) NOT NULL DEFAULT '#6644FF',
  `project_logo` char(36) DEFAULT NULL,
  `public_foreground` char(36) DEFAULT NULL,
  `public_background` char(36) DEFAULT NULL,
  `public_note` text DEFAULT NULL,
  `auth_login_attempts` int(10) unsigned DEFAULT 25,
  `auth_password_policy` varchar(100) DEFAULT NULL,
  `storage_asset_transform` varchar(7) DEFAULT 'all',
  `storage_asset_presets` json DEFAULT NULL,
  `custom_css` text DEFAULT NULL,
  `storage_default_folder` char(36) DEFAULT NULL,
  `basemaps` json DEFAULT NULL,
  `mapbox_key` varchar(255) DEFAULT NULL,
  `module_bar` json DEFAULT NULL,
  `project_descriptor` varchar(100) DEFAULT NULL,
  `default_language` varchar(255) NOT NULL DEFAULT 'en-US',
  `custom_aspect_ratios` json DEFAULT NULL,
  `public_favicon` char(36) DEFAULT NULL,
  `default_appearance` varchar(255) NOT NULL DEFAULT 'auto',
  `default_theme_light` varchar(255) DEFAULT NULL,
  `theme_light_overrides` json DEFAULT NULL,
  `default_theme_dark` varchar(255) DEFAULT NULL,
  `theme_dark_overrides` json DEFAULT NULL,
  `report_error_url` varchar(255) DEFAULT NULL,
  `report_bug_url` varchar(255) DEFAULT NULL,
  `report_feature_url` varchar(255) DEFAULT NULL,
  `public_registration` tinyint(1) NOT NULL DEFAULT 0,
  `public_registration_verify_email` tinyint(1) NOT NULL DEFAULT 1,
  `public_registration_role` char(36) DEFAULT NULL,
  `public_registration_email_filter` json DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `directus_settings_project_logo_foreign` (`project_logo`),
  KEY `directus_settings_public_foreground_foreign` (`public_foreground`),
  KEY `directus_settings_public_background_foreign` (`public_background`),
  KEY `directus_settings_storage_default_folder_foreign` (`storage_default_folder`),
  KEY `directus_settings_public_favicon_foreign` (`public_favicon`),
  KEY `directus_settings_public_registration_role_foreign` (`public_registration_role`),
  CONSTRAINT `directus_settings_project_logo_foreign` FOREIGN KEY (`project_logo`) REFERENCES `directus_files` (`id`),
  CONSTRAINT `directus_settings_public_background_foreign` FOREIGN KEY (`public_background`) REFERENCES `directus_files` (`id`),
  CONSTRAINT `directus_settings_public_favicon_foreign` FOREIGN KEY (`public_favicon`) REFERENCES `directus_files` (`id`),
  CONSTRAINT `directus_settings_public_foreground_foreign` FOREIGN KEY (`public_foreground`) REFERENCES `directus_files` (`id`),
  CONSTRAINT `directus_settings_public_registration_role_foreign` FOREIGN KEY (`public_registration_role`) REFERENCES `directus_roles` (`id`)
    ON DELETE SET NULL,
  CONSTRAINT `directus_settings_storage_default_folder_foreign` FOREIGN KEY (`storage_default_folder`) REFERENCES `directus_folders` (`id`)
    ON DELETE SET NULL""",
    'directus_shares': """
  `id` char(36) NOT NULL,
  `name` varchar(255) DEFAULT NULL,
  `collection` varchar(64) NOT NULL,
  `item` varchar(255) NOT NULL,
  `role` char(36) DEFAULT NULL,
  `password` varchar(255) DEFAULT NULL,
  `user_created` char(36) DEFAULT NULL,
  `date_created` timestamp NULL DEFAULT current_timestamp(),
  `date_start` timestamp NULL DEFAULT NULL,
  `date_end` timestamp NULL DEFAULT NULL,
  `times_used` int(11) DEFAULT 0,
  `max_uses` int(11) DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `directus_shares_role_foreign` (`role`),
  KEY `directus_shares_user_created_foreign` (`user_created`),
  KEY `directus_shares_collection_foreign` (`collection`),
  CONSTRAINT `directus_shares_collection_foreign` FOREIGN KEY (`collection`) REFERENCES `directus_collections` (`collection`) ON DELETE CASCADE,
  CONSTRAINT `directus_shares_role_foreign` FOREIGN KEY (`role`) REFERENCES `directus_roles` (`id`) ON DELETE CASCADE,
  CONSTRAINT `directus_shares_user_created_foreign` FOREIGN KEY (`user_created`) REFERENCES `directus_users` (`id`) ON DELETE SET NULL""",
    'directus_translations': """
  `id` char(36) NOT NULL,
  `language` varchar(255) NOT NULL,
  `key` varchar(255) NOT NULL,
  `value` text NOT NULL,
  PRIMARY KEY (`id`)""",
    'directus_users': """
  `id` char(36) NOT NULL,
  `first_name` varchar(50) DEFAULT NULL,
  `last_name` varchar(50) DEFAULT NULL,
  `email` varchar(128) DEFAULT NULL,
  `password` varchar(255) DEFAULT NULL,
  `location` varchar(255) DEFAULT NULL,
  `title` varchar(50) DEFAULT NULL,
  `description` text DEFAULT NULL,
  `tags` json DEFAULT NULL,
  `avatar` char(36) DEFAULT NULL,
  `language` varchar(255) DEFAULT NULL,
  `tfa_secret` varchar(255) DEFAULT NULL,
  `status` varchar(16) NOT NULL DEFAULT 'active',
  `role` char(36) DEFAULT NULL,
  `token` varchar(255) DEFAULT NULL,
  `last_access` timestamp NULL DEFAULT NULL,
  `last_page` varchar(255) DEFAULT NULL,
  `provider` varchar(128) NOT NULL DEFAULT 'default',
  `external_identifier` varchar(255) DEFAULT NULL,
  `auth_data` json DEFAULT NULL,
  `email_notifications` tinyint(1) DEFAULT 1,
  `appearance` varchar(255) DEFAULT NULL,
  `theme_dark` varchar(255) DEFAULT NULL,
  `theme_light` varchar(255) DEFAULT NULL,
  `theme_light_overrides` json DEFAULT NULL,
  `theme_dark_overrides` json DEFAULT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `directus_users_external_identifier_unique` (`external_identifier`),
  UNIQUE KEY `directus_users_email_unique` (`email`),
  UNIQUE KEY `directus_users_token_unique` (`token`),
  KEY `directus_users_role_foreign` (`role`),
  CONSTRAINT `directus_users_role_foreign` FOREIGN KEY (`role`) REFERENCES `directus_roles` (`id`) ON DELETE SET NULL""",
    'directus_versions': """
  `id` char(36) NOT NULL,
  `key` varchar(64) NOT NULL,
  `name` varchar(255) DEFAULT NULL,
  `collection` varchar(64) NOT NULL,
  `item` varchar(255) NOT NULL,
  `hash` varchar(255) DEFAULT NULL,
  `date_created` timestamp NULL DEFAULT current_timestamp(),
  `date_updated` timestamp NULL DEFAULT current_timestamp(),
  `user_created` char(36) DEFAULT NULL,
  `user_updated` char(36) DEFAULT NULL,
  `delta` json DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `directus_versions_collection_foreign` (`collection`),
  KEY `directus_versions_user_created_foreign` (`user_created`),
  KEY `directus_versions_user_updated_foreign` (`user_updated`),
  CONSTRAINT `directus_versions_collection_foreign` FOREIGN KEY (`collection`) REFERENCES `directus_collections` (`collection`) ON DELETE CASCADE,
  CONSTRAINT `directus_versions_user_created_foreign` FOREIGN KEY (`user_created`) REFERENCES `directus_users` (`id`) ON DELETE SET NULL,
  CONSTRAINT `directus_versions_user_updated_foreign` FOREIGN KEY (`user_updated`) REFERENCES `directus_users` (`id`)""",
    'directus_webhooks': """
  `id` int(10) unsigned NOT NULL AUTO_INCREMENT,
  `name` varchar(255) NOT NULL,
  `method` varchar(10) NOT NULL DEFAULT 'POST',
  `url` varchar(255) NOT NULL,
  `status` varchar(10) NOT NULL DEFAULT 'active',
  `data` tinyint(1) NOT NULL DEFAULT 1,
  `actions` varchar(100) NOT NULL,
  `collections` varchar(255) NOT NULL,
  `headers` json DEFAULT NULL,
  `was_active_before_deprecation` tinyint(1) NOT NULL DEFAULT 0,
  `migrated_flow` char(36) DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `directus_webhooks_migrated_flow_foreign` (`migrated_flow`),
  CONSTRAINT `directus_webhooks_migrated_flow_foreign` FOREIGN KEY (`migrated_flow`) REFERENCES `directus_flows` (`id`) ON DELETE SET NULL""",
}

# Optional (not in a real 11.3 schema: Directus keeps users.avatar -> files as an app-level relation only).
AVATAR_FK = ('ALTER TABLE `directus_users` ADD KEY `directus_users_avatar_foreign` (`avatar`), '
             'ADD CONSTRAINT `directus_users_avatar_foreign` FOREIGN KEY (`avatar`) '
             'REFERENCES `directus_files` (`id`) ON DELETE SET NULL')

CONTENT_DDL = {
    'authors': """
  `id` int(10) unsigned NOT NULL AUTO_INCREMENT,
  `status` varchar(255) NOT NULL DEFAULT 'published',
  `name` varchar(255) NOT NULL,
  `email` varchar(255) DEFAULT NULL,
  `bio` text DEFAULT NULL,
  `photo` char(36) DEFAULT NULL,
  `user_created` char(36) DEFAULT NULL,
  `date_created` timestamp NULL DEFAULT NULL,
  `user_updated` char(36) DEFAULT NULL,
  `date_updated` timestamp NULL DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `authors_photo_foreign` (`photo`),
  KEY `authors_user_created_foreign` (`user_created`),
  KEY `authors_user_updated_foreign` (`user_updated`),
  CONSTRAINT `authors_photo_foreign` FOREIGN KEY (`photo`) REFERENCES `directus_files` (`id`) ON DELETE SET NULL,
  CONSTRAINT `authors_user_created_foreign` FOREIGN KEY (`user_created`) REFERENCES `directus_users` (`id`),
  CONSTRAINT `authors_user_updated_foreign` FOREIGN KEY (`user_updated`) REFERENCES `directus_users` (`id`)""",
    'articles': """
  `id` char(36) NOT NULL,
  `status` varchar(255) NOT NULL DEFAULT 'draft',
  `sort` int(11) DEFAULT NULL,
  `title` varchar(255) NOT NULL,
  `slug` varchar(255) NOT NULL,
  `body` longtext DEFAULT NULL,
  `metadata` json DEFAULT NULL,
  `published_at` datetime(3) DEFAULT NULL,
  `price` decimal(12,4) DEFAULT NULL,
  `rating` double DEFAULT NULL,
  `views` bigint(20) unsigned DEFAULT NULL,
  `featured` tinyint(1) NOT NULL DEFAULT 0,
  `location` point DEFAULT NULL,
  `signature` blob DEFAULT NULL,
  `author` int(10) unsigned DEFAULT NULL,
  `cover` char(36) DEFAULT NULL,
  `user_created` char(36) DEFAULT NULL,
  `date_created` timestamp NULL DEFAULT NULL,
  `user_updated` char(36) DEFAULT NULL,
  `date_updated` timestamp NULL DEFAULT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `articles_slug_unique` (`slug`),
  KEY `articles_author_foreign` (`author`),
  KEY `articles_cover_foreign` (`cover`),
  KEY `articles_user_created_foreign` (`user_created`),
  KEY `articles_user_updated_foreign` (`user_updated`),
  CONSTRAINT `articles_author_foreign` FOREIGN KEY (`author`) REFERENCES `authors` (`id`) ON DELETE SET NULL,
  CONSTRAINT `articles_cover_foreign` FOREIGN KEY (`cover`) REFERENCES `directus_files` (`id`) ON DELETE SET NULL,
  CONSTRAINT `articles_user_created_foreign` FOREIGN KEY (`user_created`) REFERENCES `directus_users` (`id`),
  CONSTRAINT `articles_user_updated_foreign` FOREIGN KEY (`user_updated`) REFERENCES `directus_users` (`id`)""",
    'tags': """
  `id` int(10) unsigned NOT NULL AUTO_INCREMENT,
  `name` varchar(100) NOT NULL,
  `color` varchar(255) DEFAULT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `tags_name_unique` (`name`)""",
    'articles_tags': """
  `id` int(10) unsigned NOT NULL AUTO_INCREMENT,
  `articles_id` char(36) DEFAULT NULL,
  `tags_id` int(10) unsigned DEFAULT NULL,
  `sort` int(11) DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `articles_tags_articles_id_foreign` (`articles_id`),
  KEY `articles_tags_tags_id_foreign` (`tags_id`),
  CONSTRAINT `articles_tags_articles_id_foreign` FOREIGN KEY (`articles_id`) REFERENCES `articles` (`id`) ON DELETE SET NULL,
  CONSTRAINT `articles_tags_tags_id_foreign` FOREIGN KEY (`tags_id`) REFERENCES `tags` (`id`) ON DELETE SET NULL""",
    'awkward_values': """
  `id` int(10) unsigned NOT NULL AUTO_INCREMENT,
  `label` varchar(100) NOT NULL,
  `text_value` text DEFAULT NULL,
  `long_text` longtext DEFAULT NULL,
  `json_value` json DEFAULT NULL,
  `dt3` datetime(3) DEFAULT NULL,
  `ts` timestamp NULL DEFAULT NULL,
  `d` date DEFAULT NULL,
  `t` time DEFAULT NULL,
  `dec_value` decimal(20,6) DEFAULT NULL,
  `dbl` double DEFAULT NULL,
  `big_unsigned` bigint(20) unsigned DEFAULT NULL,
  `big_signed` bigint(20) DEFAULT NULL,
  `blob_value` longblob DEFAULT NULL,
  `geom` geometry DEFAULT NULL,
  `pt` point DEFAULT NULL,
  `flag` tinyint(1) DEFAULT NULL,
  `uuid_value` char(36) DEFAULT NULL,
  `user_created` char(36) DEFAULT NULL,
  `user_updated` char(36) DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `awkward_values_user_created_foreign` (`user_created`),
  KEY `awkward_values_user_updated_foreign` (`user_updated`),
  CONSTRAINT `awkward_values_user_created_foreign` FOREIGN KEY (`user_created`) REFERENCES `directus_users` (`id`) ON DELETE SET NULL,
  CONSTRAINT `awkward_values_user_updated_foreign` FOREIGN KEY (`user_updated`) REFERENCES `directus_users` (`id`) ON DELETE SET NULL""",
}

_EPOCH = datetime.datetime(2024, 1, 1)
_IMAGE_EXTS = ('.jpg', '.png', '.webp')
_CONTENT_TYPES = {
    '.jpg': 'image/jpeg', '.png': 'image/png', '.webp': 'image/webp', '.pdf': 'application/pdf',
    '.txt': 'text/plain; charset=utf-8', '.mp4': 'video/mp4',
}
ASSET_CACHE_CONTROL = 'public, max-age=2592000'

_WORDS = ('lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore '
          'et dolore magna aliqua Grüße naïve façade Øresund 東京 café 🚀 📦 ✅ — \u201cquoted\u201d Ünïcødé ß').split()
_LOREM = ' '.join(_WORDS[(i * 7 + i // 3) % len(_WORDS)] for i in range(40000))


# ----------------------------------------------------------------------------------------------------
# deterministic ids and plans (pure)

_VARIANT = {c: '89ab'[int(c, 16) & 3] for c in '0123456789abcdef'}


def _uuid(*parts) -> str:
    h = hashlib.sha256(':'.join([str(p) for p in parts]).encode('utf-8')).hexdigest()
    # a version-4 UUID from the first 16 bytes (same as uuid.UUID(bytes=..., version=4))
    return f'{h[0:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}'


def article_id(seed, i):
    """Id of the i-th article: a v4-format UUID whose first 48 bits count up with i.

    Directus itself generates random v4 ids; these sort in creation order so that a
    million-row load appends to the clustered index instead of splitting pages at random.
    """
    h = hashlib.sha256(f'article:{seed}:{i}'.encode()).hexdigest()
    c = f'{i:012x}'
    return f'{c[:8]}-{c[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}'


def _check_env(env):
    if env not in ENVS:
        raise ValueError(f"env must be one of {ENVS}, got {env!r}")


def _user_plan(env, seed, users):
    """List of user dicts for an environment: (email, names, role key, env-specific id)."""
    if users is None:
        users = 3
    common = [('editor@example.test', 'Erika', 'Editor', 'editor')]
    common += [(f'user{i}@example.test', f'User{i}', 'Ünïcødé 👤', 'editor') for i in range(users)]
    if env == 'prod':
        own = [('admin@example.test', 'Prod', 'Admin', 'admin'),
               ('reviewer@example.test', 'Rita', 'Reviewer', 'editor')]
    else:
        own = [('admin@staging.example.test', 'Staging', 'Admin', 'admin'),
               ('writer@staging.example.test', 'Walter', 'Writer', 'editor'),
               ('designer@staging.example.test', 'Dana', 'Designer 🎨', None)]
    plan = []
    for email, first, last, role in own[:1] + common + own[1:]:
        plan.append({'id': _uuid('user', seed, env, email), 'email': email, 'first_name': first,
                     'last_name': last, 'role_key': role})
    return plan


def expected_ids(env='staging', seed=0, users=None):
    """The ids build_directus_db uses for env/seed (pure; no database needed)."""
    _check_env(env)
    roles = {'Administrator': _uuid('role', seed, env, 'admin'), 'Editor': _uuid('role', seed, 'editor')}
    policies = {'Administrator': _uuid('policy', seed, env, 'admin'), '$t:public_label': PUBLIC_POLICY_ID,
                'Editor': _uuid('policy', seed, 'editor'), 'Content Reviewer': _uuid('policy', seed, 'reviewer')}
    if env == 'staging':
        roles['Translator'] = _uuid('role', seed, 'translator')
        policies['Translator'] = _uuid('policy', seed, 'translator')
    plan = _user_plan(env, seed, users)
    return {
        'env': env, 'seed': seed,
        'admin_user_id': plan[0]['id'], 'admin_email': plan[0]['email'],
        'admin_role_id': roles['Administrator'], 'admin_policy_id': policies['Administrator'],
        'public_policy_id': PUBLIC_POLICY_ID,
        'roles': roles, 'policies': policies,
        'users': {u['email']: u['id'] for u in plan},
    }


def file_specs(env='staging', seed=0, files=20):
    """directus_files rows (as dicts) for env/seed, shared by the DB builder and the asset builder.

    Staging is newer: it has extra uploads, lacks one file production still has, and one file whose
    bytes differ (same key, same size) between the environments.
    """
    _check_env(env)
    files = max(int(files), 0)
    exts = ('.jpg', '.png', '.pdf', '.webp', '.jpg', '.txt')
    specs = []
    n_new = files // 10 + 1 if files else 0
    for i in range(files + n_new):
        is_new = i >= files
        if is_new and env == 'prod':
            continue
        if env == 'staging' and files >= 4 and i == files - 1:
            continue  # deleted on staging after the last promotion
        rng = random.Random(f'file:{seed}:{i}')
        fid = _uuid('file', seed, i)
        ext = exts[i % len(exts)]
        download = f'file-{i}{ext}'
        disk = f'{fid}{ext}'
        if i == 0:
            disk = download = 'café menu.pdf'
            ext = '.pdf'
        elif i == 1:
            disk = download = 'ünïcødé 图片.png'
            ext = '.png'
        changed = files >= 4 and i == 2  # same key + size, different bytes on staging
        specs.append({
            'id': fid, 'index': i, 'filename_disk': disk, 'filename_download': download, 'ext': ext,
            'type': _CONTENT_TYPES[ext], 'size_seed': rng.random(), 'new_on_staging': is_new,
            'content_version': 'staging' if (changed and env == 'staging') else 'base',
            'image': ext in _IMAGE_EXTS, 'width': rng.randint(64, 4000) if ext in _IMAGE_EXTS else None,
            'height': rng.randint(64, 4000) if ext in _IMAGE_EXTS else None,
        })
    return specs


def content_type(key):
    """The Content-Type build_assets gives an object (by extension; thumbnails keep the original's)."""
    for ext, ctype in _CONTENT_TYPES.items():
        if key.lower().endswith(ext):
            return ctype
    return 'application/octet-stream'


def _thumbnail_keys(spec, seed):
    if not spec['image']:
        return []
    base, ext = spec['filename_disk'][:-len(spec['ext'])], spec['ext']
    keys = []
    for k in range(2):
        h = hashlib.sha1(f"{spec['id']}:{seed}:{k}".encode()).hexdigest()[:10]
        keys.append(f'{base}__{h}{ext}')
    return keys


def asset_keys(env='staging', seed=0, files=20, thumbnails=True):
    """Object keys (without prefix) build_assets puts for env/seed: originals and `__` thumbnails."""
    keys = []
    for spec in file_specs(env, seed, files):
        keys.append(spec['filename_disk'])
        if thumbnails:
            keys.extend(_thumbnail_keys(spec, seed))
    return keys


def _object_body(key, seed, version, size_range, size_seed):
    lo, hi = size_range
    size = lo + int(size_seed * (hi - lo + 1)) if hi > lo else lo
    size = min(max(size, lo), hi)
    rng = random.Random(f'body:{seed}:{key}:{version}')
    body = rng.randbytes(size)
    if size:
        body = b'\x00' + body[1:]
    return body


# ----------------------------------------------------------------------------------------------------
# database helpers

def _q(name):
    return '`' + name.replace('`', '``') + '`'


def _point(x, y):
    """MariaDB's internal geometry format (SRID + WKB) for a POINT; inserts as a plain binary value."""
    return struct.pack('<IBIdd', 0, 1, 1, x, y)


def _linestring(points):
    return struct.pack('<IBI', 0, 1, 2) + struct.pack('<I', len(points)) + b''.join(struct.pack('<dd', x, y) for x, y in points)


_ESCAPES = {0: '\\0', 10: '\\n', 13: '\\r', 26: '\\Z', 39: "\\'", 34: '\\"', 92: '\\\\'}

_NEEDS_ESCAPE = re.compile(r'[\x00\n\r\x1a\'"\\]').search


def _literal(value, conn):
    """SQL literal for one value (fast paths for the common types; PyMySQL's escaping otherwise)."""
    if value is None:
        return 'NULL'
    kind = type(value)
    if kind is str:
        if _NEEDS_ESCAPE(value):
            return "'" + value.translate(_ESCAPES) + "'"
        return "'" + value + "'"
    if kind is int:
        return str(value)
    if kind is bytes:
        return "X'" + value.hex() + "'" if value else "''"
    if kind is datetime.datetime:
        return "'" + value.isoformat(' ') + "'"
    if kind is float:
        return repr(value)
    if kind is Decimal:
        return format(value, 'f')
    return conn.escape(value)


def _statements(table, columns, rows, conn, max_bytes=4 * 1024 * 1024):
    head = 'INSERT INTO {} ({}) VALUES '.format(_q(table), ', '.join(_q(c) for c in columns))
    parts, size = [], len(head)
    for row in rows:
        text = '(' + ','.join([_literal(v, conn) for v in row]) + ')'
        if parts and size + len(text) > max_bytes:
            yield head + ','.join(parts)
            parts, size = [], len(head)
        parts.append(text)
        size += len(text) + 1
    if parts:
        yield head + ','.join(parts)


def _insert(cur, table, columns, rows):
    """Multi-row INSERT statements of up to 4 MB built from `rows` (any iterable)."""
    n = 0
    for sql in _statements(table, columns, rows, cur.connection):
        n += cur.execute(sql)
    return n


class _Sender:
    """Sends statements from a worker thread so Python builds the next batch while the server inserts."""

    def __init__(self, conn):
        self.conn = conn
        self.queue = queue.Queue(maxsize=3)
        self.error = None
        self.rows = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        with self.conn.cursor() as cur:
            while True:
                item = self.queue.get()
                if item is None:
                    return
                if self.error is None:
                    try:
                        self.rows += cur.execute(item)
                        self.conn.commit()
                    except Exception as exc:  # pylint: disable=broad-exception-caught  # re-raised by close()
                        self.error = exc

    def insert(self, table, columns, rows):
        for sql in _statements(table, columns, rows, self.conn):
            if self.error is not None:
                break
            self.queue.put(sql)

    def close(self):
        self.queue.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error
        return self.rows


def _ts(rng, days=600):
    return _EPOCH + datetime.timedelta(seconds=rng.randrange(days * 86400))


def _ts3(rng, days=600):
    return _EPOCH + datetime.timedelta(seconds=rng.randrange(days * 86400), milliseconds=rng.randrange(1000))


def _j(value):
    return json.dumps(value, ensure_ascii=False, separators=(',', ':'))


def row_counts(n):
    """Split a content row budget over the content tables (articles ~45 %, junction ~54 %)."""
    n = max(int(n), 10)
    authors = max(3, n // 200)
    tags = max(3, min(500, n // 100))
    awkward = 12 + n // 1000
    articles = max(4, (n - authors - tags - awkward) * 45 // 100)
    junction = max(0, n - authors - tags - awkward - articles)
    return {'authors': authors, 'tags': tags, 'articles': articles, 'articles_tags': junction,
            'awkward_values': awkward}


# ----------------------------------------------------------------------------------------------------
# builder

def build_directus_db(conn, database, env='staging', seed=0, content_rows=200, files=20, users=None,
                      extra_migrations=(), avatar_fk=False, batch_rows=2000, fast_load=True, long_text_every=50, long_text_max=60):
    """(Re)create `database` on conn's server, shaped like a Directus 11.3 database for `env`.

    conn: a PyMySQL connection with rights to drop/create the database (left open, autocommit restored).
    env: 'staging' (newer content, own users) or 'prod'.
    seed: everything (ids, content, differences) is deterministic from (seed, env).
    content_rows: approximate total rows over the content tables (1_000_000 ~ bench size).
    files: number of directus_files rows (see file_specs / asset_keys).
    users: extra users `user<i>@example.test` present in both envs (default 3).
    extra_migrations: (version, name) pairs appended to directus_migrations (make envs differ).
    avatar_fk: also add a DB foreign key users.avatar -> files (SET NULL); real Directus has none.
    long_text_every / long_text_max: every n-th article (at most max of them) gets a ~80 KB body (> TEXT's 64 KB).
    batch_rows: rows per executemany batch; fast_load: unique_checks=0 during the load.
    Returns a dict: describe()-like ids plus 'rows' {table: count} and 'seconds'.
    """
    _check_env(env)
    started = time.monotonic()
    ids = expected_ids(env, seed, users)
    plan = _user_plan(env, seed, users)
    old_autocommit = conn.get_autocommit()
    conn.autocommit(False)
    rows = {}
    try:
        with conn.cursor() as cur:
            cur.max_stmt_length = 8 * 1024 * 1024
            cur.execute("SET SESSION time_zone = '+00:00'")
            cur.execute('SET SESSION foreign_key_checks = 0')
            if fast_load:
                cur.execute('SET SESSION unique_checks = 0')
            cur.execute(f'DROP DATABASE IF EXISTS {_q(database)}')
            cur.execute(f'CREATE DATABASE {_q(database)} CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci')
            cur.execute(f'USE {_q(database)}')
            for table in SYSTEM_TABLES:
                cur.execute(f'CREATE TABLE {_q(table)} ({SYSTEM_DDL[table]}\n){_TBL}')
            for table in CONTENT_TABLES:
                cur.execute(f'CREATE TABLE {_q(table)} ({CONTENT_DDL[table]}\n){_TBL}')
            if avatar_fk:
                cur.execute(AVATAR_FK)
            rows.update(_load_system(cur, env, seed, ids, plan, files, extra_migrations))
            conn.commit()
            rows.update(_load_content(cur, conn, env, seed, users, files, content_rows, batch_rows,
                                      long_text_every, long_text_max))
            conn.commit()
            cur.execute('SET SESSION unique_checks = 1')
            cur.execute('SET SESSION foreign_key_checks = 1')
    except Exception:
        conn.rollback()
        raise
    finally:
        conn.autocommit(old_autocommit)
    result = dict(ids)
    result['database'] = database
    result['rows'] = rows
    result['seconds'] = round(time.monotonic() - started, 3)
    return result


def _load_system(cur, env, seed, ids, plan, files, extra_migrations):
    rng = random.Random(f'system:{seed}:{env}')
    counts = {}
    roles, policies = ids['roles'], ids['policies']
    admin = ids['admin_user_id']
    by_email = {u['email']: u['id'] for u in plan}
    editor = by_email['editor@example.test']

    # migrations (same set in both envs unless extra_migrations says otherwise)
    mig_ts = datetime.datetime(2025, 1, 10, 10, 51, 37) if env == 'prod' else datetime.datetime(2025, 2, 3, 8, 0, 5)
    counts['directus_migrations'] = _insert(cur, 'directus_migrations', ('version', 'name', 'timestamp'),
                                            [(v, n, mig_ts) for v, n in list(MIGRATIONS) + list(extra_migrations)])

    # roles / policies / access (admin ids differ per env: separate bootstraps)
    role_rows = [(roles['Administrator'], 'Administrator', 'verified', '$t:admin_description', None),
                 (roles['Editor'], 'Editor', 'edit', 'Edits content ✍️', None)]
    if 'Translator' in roles:
        role_rows.append((roles['Translator'], 'Translator', 'translate', 'New on staging', roles['Editor']))
    counts['directus_roles'] = _insert(cur, 'directus_roles', ('id', 'name', 'icon', 'description', 'parent'), role_rows)
    pol_rows = [(policies['Administrator'], 'Administrator', 'verified', '$t:admin_description', None, 0, 1, 1),
                (PUBLIC_POLICY_ID, '$t:public_label', 'public', '$t:public_description', None, 0, 0, 0),
                (policies['Editor'], 'Editor', 'edit', None, None, 0, 0, 1),
                (policies['Content Reviewer'], 'Content Reviewer', 'rate_review', 'Extra rights for reviewers', '10.0.0.0/8', 1, 0, 1)]
    if 'Translator' in policies:
        pol_rows.append((policies['Translator'], 'Translator', 'translate', None, None, 0, 0, 1))
    counts['directus_policies'] = _insert(cur, 'directus_policies', (
        'id', 'name', 'icon', 'description', 'ip_access', 'enforce_tfa', 'admin_access', 'app_access'), pol_rows)
    access = [(_uuid('access', seed, env, 'admin'), roles['Administrator'], None, policies['Administrator'], None),
              (_uuid('access', seed, 'public'), None, None, PUBLIC_POLICY_ID, 1),
              (_uuid('access', seed, 'editor'), roles['Editor'], None, policies['Editor'], 1)]
    if env == 'prod':
        access.append((_uuid('access', seed, env, 'user-reviewer'), None, by_email['reviewer@example.test'],
                       policies['Content Reviewer'], 1))
        access.append((_uuid('access', seed, env, 'user-editor'), None, editor, policies['Content Reviewer'], 2))
    else:
        access.append((_uuid('access', seed, 'translator'), roles['Translator'], None, policies['Translator'], 1))
        access.append((_uuid('access', seed, env, 'user-writer'), None, by_email['writer@staging.example.test'],
                       policies['Content Reviewer'], 1))
    counts['directus_access'] = _insert(cur, 'directus_access', ('id', 'role', 'user', 'policy', 'sort'), access)

    # permissions (promoted config; staging has one more)
    perms = []
    for coll in ('articles', 'authors', 'tags', 'articles_tags'):
        for action in ('create', 'read', 'update', 'delete'):
            perms.append((coll, action, _j({}) if action != 'read' else _j({'status': {'_neq': 'archived'}}),
                          None, None, '*', policies['Editor']))
    perms.append(('articles', 'read', _j({'status': {'_eq': 'published'}}), None, None, 'id,title,slug,body,cover',
                  PUBLIC_POLICY_ID))
    perms.append(('directus_files', 'read', None, None, None, '*', PUBLIC_POLICY_ID))
    if env == 'staging':
        perms.append(('articles', 'update', _j({'user_created': {'_eq': '$CURRENT_USER'}}), None,
                      _j({'status': 'draft'}), 'title,body', policies['Translator']))
    counts['directus_permissions'] = _insert(cur, 'directus_permissions', ('collection', 'action', 'permissions', 'validation',
                                                                           'presets', 'fields', 'policy'), perms)

    # folders and files
    images_folder, docs_folder = _uuid('folder', seed, 'images'), _uuid('folder', seed, 'docs')
    counts['directus_folders'] = _insert(cur, 'directus_folders', ('id', 'name', 'parent'),
                                         [(images_folder, 'Images 🖼', None), (docs_folder, 'Docs', None),
                                          (_uuid('folder', seed, 'press'), 'Presse & Medien', docs_folder)])
    file_rows = []
    for spec in file_specs(env, seed, files):
        frng = random.Random(f'filerow:{seed}:{spec["index"]}')
        k = frng.randrange(len(plan) + 1)
        uploader = plan[k]['id'] if k < len(plan) else None  # some files have no uploader
        created = _ts(frng)
        file_rows.append((spec['id'], STORAGE_LOCATION, spec['filename_disk'], spec['filename_download'],
                          f'File {spec["index"]} ✨', spec['type'], images_folder if spec['image'] else docs_folder,
                          uploader, created, uploader, created + datetime.timedelta(hours=1),
                          _object_size(spec), spec['width'], spec['height'],
                          _j({'exif': {'Make': 'Ünï', 'ISO': frng.randint(50, 3200)}}) if spec['image'] else None,
                          created))
    counts['directus_files'] = _insert(cur, 'directus_files', (
        'id', 'storage', 'filename_disk', 'filename_download', 'title', 'type', 'folder', 'uploaded_by', 'created_on',
        'modified_by', 'modified_on', 'filesize', 'width', 'height', 'metadata', 'uploaded_on'), file_rows)
    file_ids = [r[0] for r in file_rows]

    # users (env specific ids; same e-mail -> different id in the other env)
    user_rows = []
    for n, u in enumerate(plan):
        role = {'admin': roles['Administrator'], 'editor': roles['Editor'], None: None}[u['role_key']]
        user_rows.append((u['id'], u['first_name'], u['last_name'], u['email'],
                          '$argon2id$v=19$m=65536,t=3,p=4$' + hashlib.sha256(u['id'].encode()).hexdigest()[:43],
                          _j(['team', env]), file_ids[n % len(file_ids)] if file_ids and n % 2 == 0 else None,
                          'active' if n != len(plan) - 1 else 'suspended', role,
                          hashlib.sha1(f'token:{u["id"]}'.encode()).hexdigest() if u['role_key'] == 'admin' else None,
                          _ts(rng) if n % 3 else None, '/content/articles',
                          'de-DE' if n % 2 else 'en-US'))
    counts['directus_users'] = _insert(cur, 'directus_users', (
        'id', 'first_name', 'last_name', 'email', 'password', 'tags', 'avatar', 'status', 'role', 'token',
        'last_access', 'last_page', 'language'), user_rows)

    # sessions, settings, notifications, shares, comments (environment state)
    sessions = []
    for n, u in enumerate(plan[:3]):
        sessions.append((hashlib.sha256(f'session:{seed}:{env}:{n}'.encode()).hexdigest()[:64], u['id'],
                         datetime.datetime(2031, 1, 1) + datetime.timedelta(hours=n), '203.0.113.%d' % (n + 1),
                         'Mozilla/5.0 (X11; Linux x86_64) 🦊', None, f'https://{env}.example.test', None))
    counts['directus_sessions'] = _insert(cur, 'directus_sessions', ('token', 'user', 'expires', 'ip', 'user_agent',
                                                                     'share', 'origin', 'next_token'), sessions)
    counts['directus_settings'] = _insert(cur, 'directus_settings', (
        'id', 'project_name', 'project_url', 'project_color', 'project_descriptor', 'public_note', 'storage_default_folder',
        'storage_asset_presets', 'module_bar', 'project_logo'), [(
            1, 'Casper CMS', f'https://{"cms" if env == "prod" else "cms.staging"}.example.test',
            '#6644FF' if env == 'prod' else '#FFA439', 'Production' if env == 'prod' else 'Staging 🧪',
            f'{env} – handle with care', images_folder,
            _j([{'key': 'thumb', 'fit': 'cover', 'width': 200, 'height': 200, 'quality': 80}]),
            _j([{'type': 'module', 'id': 'content', 'enabled': True}]), file_ids[0] if file_ids else None)])
    notif = [(datetime.datetime(2025, 3, 1, 12, 0, n), 'inbox', plan[1]['id'], admin, f'Review request #{n} 📝',
              f'Please review article {n}', 'articles', article_id(seed, n)) for n in range(3 if env == 'prod' else 1)]
    counts['directus_notifications'] = _insert(cur, 'directus_notifications', (
        'timestamp', 'status', 'recipient', 'sender', 'subject', 'message', 'collection', 'item'), notif)
    # collections / fields / relations (promoted schema config; shares/comments/versions reference collections)
    counts.update(_load_schema_meta(cur, env))
    share_id = _uuid('share', seed, env)
    counts['directus_shares'] = _insert(cur, 'directus_shares', (
        'id', 'name', 'collection', 'item', 'role', 'password', 'user_created', 'date_created', 'times_used', 'max_uses'),
        [(share_id, f'{env} share', 'articles', article_id(seed, 0), roles['Editor'], None, admin,
          datetime.datetime(2025, 3, 2), 3, 10)])
    counts['directus_comments'] = _insert(cur, 'directus_comments', (
        'id', 'collection', 'item', 'comment', 'date_created', 'date_updated', 'user_created', 'user_updated'),
        [(_uuid('comment', seed, env, n), 'articles', article_id(seed, n), f'Looks good 👍 ({env} #{n})',
          datetime.datetime(2025, 3, 3, 9, n), datetime.datetime(2025, 3, 3, 10, n), editor, editor) for n in range(2)])

    # flows, operations, dashboards, panels, translations, versions, extensions, webhooks
    flow = _uuid('flow', seed, 'notify')
    op1, op2 = _uuid('operation', seed, 'log'), _uuid('operation', seed, 'request')
    hook_url = f'https://hooks.{env}.example.test/directus?token=not-a-secret-{env}'
    counts['directus_flows'] = _insert(cur, 'directus_flows', (
        'id', 'name', 'icon', 'color', 'description', 'status', 'trigger', 'accountability', 'options', 'operation',
        'date_created', 'user_created'), [(flow, 'Notify on publish', 'bolt', '#FFC23B', 'Sends a webhook 🚀', 'active',
                                           'event', 'all', _j({'type': 'action', 'scope': ['items.update'],
                                                               'collections': ['articles']}),
                                           op1, datetime.datetime(2025, 1, 20), admin)])
    counts['directus_operations'] = _insert(cur, 'directus_operations', (
        'id', 'name', 'key', 'type', 'position_x', 'position_y', 'options', 'resolve', 'reject', 'flow', 'date_created',
        'user_created'), [(op2, 'Call webhook', 'request', 'request', 37, 1, _j({'url': hook_url, 'method': 'POST'}),
                           None, None, flow, datetime.datetime(2025, 1, 20), admin),
                          (op1, 'Log', 'log', 'log', 19, 1, _j({'message': 'publish {{$trigger.keys}}'}), op2, None, flow,
                           datetime.datetime(2025, 1, 20), admin)])
    dash = _uuid('dashboard', seed, 'main')
    counts['directus_dashboards'] = _insert(cur, 'directus_dashboards', (
        'id', 'name', 'icon', 'note', 'date_created', 'user_created', 'color'),
        [(dash, 'Editorial KPIs 📈', 'space_dashboard', None, datetime.datetime(2025, 1, 21), admin, '#2ECDA7')])
    counts['directus_panels'] = _insert(cur, 'directus_panels', (
        'id', 'dashboard', 'name', 'icon', 'color', 'show_header', 'note', 'type', 'position_x', 'position_y', 'width',
        'height', 'options', 'date_created', 'user_created'),
        [(_uuid('panel', seed, n), dash, f'Panel {n}', 'insights', None, 1, None, 'metric', 1 + 12 * n, 1, 12, 8,
          _j({'collection': 'articles', 'field': 'views', 'function': 'sum'}), datetime.datetime(2025, 1, 21), admin)
         for n in range(2)])
    trans = [(_uuid('translation', seed, lang, key), lang, key, val) for lang, key, val in (
        ('en-US', 'read_more', 'Read more →'), ('de-DE', 'read_more', 'Weiterlesen →'),
        ('ja-JP', 'read_more', '続きを読む'), ('en-US', 'cta', 'Launch 🚀'))]
    if env == 'staging':
        trans.append((_uuid('translation', seed, 'fr-FR', 'read_more'), 'fr-FR', 'read_more', 'Lire la suite →'))
    counts['directus_translations'] = _insert(cur, 'directus_translations', ('id', 'language', 'key', 'value'), trans)
    version_id = _uuid('version', seed, env, 'draft')
    counts['directus_versions'] = _insert(cur, 'directus_versions', (
        'id', 'key', 'name', 'collection', 'item', 'hash', 'date_created', 'date_updated', 'user_created', 'user_updated',
        'delta'), [(version_id, 'draft', 'Draft ✏️', 'articles', article_id(seed, 1), 'h' * 40,
                    datetime.datetime(2025, 2, 1), datetime.datetime(2025, 2, 2), editor, editor,
                    _j({'title': 'Draft title 📝'}))])
    counts['directus_extensions'] = _insert(cur, 'directus_extensions', ('enabled', 'id', 'folder', 'source', 'bundle'),
                                            [(1, _uuid('extension', seed, env), 'directus-extension-seo', 'registry', None)])
    counts['directus_webhooks'] = _insert(cur, 'directus_webhooks', (
        'name', 'method', 'url', 'status', 'data', 'actions', 'collections', 'headers', 'was_active_before_deprecation',
        'migrated_flow'), [(f'{env} cache purge', 'POST', f'https://purge.{env}.example.test/hook', 'inactive', 1,
                            'create,update', 'articles', _j([{'header': 'X-Env', 'value': env}]), 1, flow)])

    # presets: global/role presets (user NULL) + per-user presets
    presets = [('All articles', None, None, 'articles', None, 'tabular', _j({'tabular': {'sort': ['-date_created']}}), None,
                'bookmark', None),
               (None, None, roles['Editor'], 'articles', None, 'cards', _j({'cards': {'limit': 25}}), None, 'image', None)]
    if env == 'prod':
        presets.append((None, editor, None, 'articles', 'rocket 🚀', 'tabular', _j({'tabular': {'page': 2}}),
                        _j({'tabular': {'widths': {'title': 320}}}), 'bookmark', '#E35169'))
    else:
        presets.append(('Drafts', None, None, 'articles', None, 'tabular', _j({'tabular': {'fields': ['title']}}),
                        None, 'edit', None))
        presets.append((None, by_email['writer@staging.example.test'], None, 'authors', None, 'tabular', None, None,
                        'bookmark', None))
    counts['directus_presets'] = _insert(cur, 'directus_presets', (
        'bookmark', 'user', 'role', 'collection', 'search', 'layout', 'layout_query', 'layout_options', 'icon', 'color'),
        presets)

    # activity + revisions (audit trail, env specific)
    n_act = 6 if env == 'prod' else 4
    act_rows = [(n + 1, 'update' if n % 2 else 'create', plan[n % len(plan)]['id'], datetime.datetime(2025, 3, 1, 8, n),
                 '198.51.100.7', 'Mozilla/5.0 🦊', 'articles', article_id(seed, n), f'https://{env}.example.test')
                for n in range(n_act)]
    act_rows.append((n_act + 1, 'login', admin, datetime.datetime(2025, 3, 1, 9, 0), '198.51.100.7', 'curl/8',
                     'directus_users', admin, f'https://{env}.example.test'))
    counts['directus_activity'] = _insert(cur, 'directus_activity', (
        'id', 'action', 'user', 'timestamp', 'ip', 'user_agent', 'collection', 'item', 'origin'), act_rows)
    rev_rows = [(n + 1, n + 1, 'articles', article_id(seed, n), _j({'title': f'Rev {n} ✨', 'views': 2 ** 63 + n}),
                 _j({'title': f'Rev {n} ✨'}), n if n else None, version_id if n == 1 else None) for n in range(n_act)]
    counts['directus_revisions'] = _insert(cur, 'directus_revisions', (
        'id', 'activity', 'collection', 'item', 'data', 'delta', 'parent', 'version'), rev_rows)
    return counts


def _object_size(spec, size_range=(1024, 4096)):
    lo, hi = size_range
    return min(max(lo + int(spec['size_seed'] * (hi - lo + 1)), lo), hi)


def _load_schema_meta(cur, env):
    counts = {}
    colls = [('authors', 'person', None, '{{name}}', None, 10),
             ('articles', 'article', 'News & stories 📰', '{{title}}', 'status', 20),
             ('tags', 'label', None, '{{name}}', None, 30), ('articles_tags', 'import_export', None, None, None, 40),
             ('awkward_values', 'bug_report', 'Edge cases', '{{label}}', None, 50)]
    counts['directus_collections'] = _insert(cur, 'directus_collections', (
        'collection', 'icon', 'note', 'display_template', 'archive_field', 'sort', 'hidden', 'versioning', 'translations'),
        [(c, icon, note, tmpl, arch, sort, 1 if c == 'articles_tags' else 0, 1 if c == 'articles' else 0,
          _j([{'language': 'de-DE', 'translation': c.capitalize()}]) if c == 'articles' else None)
         for c, icon, note, tmpl, arch, sort in colls])
    fields = []
    for coll in CONTENT_TABLES:
        for col in _content_columns(coll):
            special = None
            interface = 'input'
            if col in ('user_created', 'user_updated'):
                special, interface = f'{col.split("_")[1]}', 'select-dropdown-m2o'
                special = 'user-created' if col == 'user_created' else 'user-updated'
            elif col in ('date_created', 'date_updated'):
                special, interface = ('date-created' if col == 'date_created' else 'date-updated'), 'datetime'
            elif col in ('id',) and coll == 'articles':
                special = 'uuid'
            elif col in ('metadata', 'json_value'):
                special, interface = 'cast-json', 'input-code'
            elif col in ('location', 'pt', 'geom'):
                special, interface = 'geometry', 'map'
            elif col in ('cover', 'photo'):
                special, interface = 'file', 'file-image'
            fields.append((coll, col, special, interface, 1 if col in ('id', 'user_created', 'user_updated') else 0))
    fields.append(('articles', 'tags', 'm2m', 'list-m2m', 0))
    if env == 'staging':
        fields.append(('articles', 'seo_notes', 'alias,no-data', 'presentation-notice', 0))
    counts['directus_fields'] = _insert(cur, 'directus_fields', ('collection', 'field', 'special', 'interface', 'readonly'),
                                        fields)
    rels = []
    for coll in CONTENT_TABLES:
        cols = _content_columns(coll)
        for col in ('user_created', 'user_updated'):
            if col in cols:
                rels.append((coll, col, 'directus_users', None, None, None, 'nullify'))
        for col, target in (('photo', 'directus_files'), ('cover', 'directus_files'), ('author', 'authors')):
            if col in cols:
                rels.append((coll, col, target, None, None, None, 'nullify'))
    rels.append(('articles_tags', 'articles_id', 'articles', 'tags', 'tags_id', None, 'nullify'))
    rels.append(('articles_tags', 'tags_id', 'tags', None, 'articles_id', None, 'nullify'))
    counts['directus_relations'] = _insert(cur, 'directus_relations', (
        'many_collection', 'many_field', 'one_collection', 'one_field', 'junction_field', 'sort_field',
        'one_deselect_action'), rels)
    return counts


def _content_columns(table):
    cols = []
    for line in CONTENT_DDL[table].splitlines():
        line = line.strip()
        if line.startswith('`'):
            cols.append(line.split('`')[1])
    return cols


def creator_ids(env, seed, users=None):
    """Index -> user id used for user_created/user_updated in content.

    Content was created on staging by staging users and promoted earlier; production's copy has those
    references mapped by e-mail (prod user with the same e-mail) or NULL.
    """
    staging = _user_plan('staging', seed, users)
    if env == 'staging':
        return [u['id'] for u in staging]
    prod_by_email = {u['email']: u['id'] for u in _user_plan('prod', seed, users)}
    return [prod_by_email.get(u['email']) for u in staging]


def _article_row(rng, seed, i, creators, n_authors, file_ids, long_text_every, long_text_max):
    long_body = long_text_every and i % long_text_every == 3 and i // long_text_every < long_text_max
    if long_body:
        body = ('<p>' + _LOREM[:20000] + '</p>') * 4  # > 64 KB (TEXT limit), multibyte
    else:
        off = rng.randrange(len(_LOREM) - 800)
        body = _LOREM[off:off + rng.randrange(20, 300)] if i % 11 else None
    views = rng.getrandbits(64) if i % 5 == 0 else rng.randrange(100000)
    creator = creators[i % len(creators)]
    updater = creators[(i * 7 + 1) % len(creators)] if i % 3 else None
    created = _ts(rng)
    return [
        article_id(seed, i), ('published', 'draft', 'archived')[i % 3], i,
        f'Article {i} – {_WORDS[i % len(_WORDS)]} 🚀' if i % 4 else f'Ärtïkel {i} \u201eÜnïcødé\u201c 東京',
        f'article-{i}', body,
        _j({'seo': {'title': f'T{i}', 'keywords': ['a', 'ü', '🚀']}, 'n': i, 'nested': [None, True, 1.5]})
        if i % 6 else (None if i % 12 else '{"empty":{}}'),
        _ts3(rng) if i % 9 else None,
        Decimal(rng.randrange(-10 ** 11, 10 ** 11)).scaleb(-4) if i % 8 else None,
        rng.random() * 10 ** rng.randrange(-5, 10) if i % 10 else None,
        views, i % 2,
        _point(round(rng.uniform(-180, 180), 6), round(rng.uniform(-90, 90), 6)) if i % 4 else None,
        (b'\x00' + rng.randbytes(rng.randrange(8, 40)) + b'\x00\x00') if i % 3 == 0 else None,
        (i % n_authors) + 1 if i % 13 else None,
        file_ids[i % len(file_ids)] if file_ids and i % 2 else None,
        creator, created, updater, created + datetime.timedelta(days=1) if updater else None,
    ]


ARTICLE_COLUMNS = ('id', 'status', 'sort', 'title', 'slug', 'body', 'metadata', 'published_at', 'price', 'rating',
                   'views', 'featured', 'location', 'signature', 'author', 'cover', 'user_created', 'date_created',
                   'user_updated', 'date_updated')


def _load_content(cur, conn, env, seed, users, files, content_rows, batch_rows, long_text_every, long_text_max):
    counts = row_counts(content_rows)
    creators = creator_ids(env, seed, users)
    file_ids = [s['id'] for s in file_specs(env, seed, files)]
    # file rows that exist in both envs only (so prod and staging content reference valid files)
    common_files = [s['id'] for s in file_specs('prod', seed, files) if s['id'] in set(file_ids)]
    out = {}

    rng = random.Random(f'authors:{seed}')
    authors = []
    for i in range(counts['authors']):
        created = _ts(rng)
        authors.append((i + 1, 'published', f'Autor {i} 👩‍💻' if i % 2 else f'Author {i}', f'author{i}@example.test',
                        _LOREM[i:i + 200] if i % 4 else None, common_files[i % len(common_files)] if common_files and i % 3 else None,
                        creators[i % len(creators)], created, None, None))
    if env == 'staging':
        authors[0] = authors[0][:4] + ('Updated bio on staging ✍️',) + authors[0][5:]
    out['authors'] = _insert(cur, 'authors', _content_columns('authors'), authors)

    tags = [(i + 1, f'tag-{i}' if i % 5 else f'tåg-{i} 🏷', ('#FF0000', None, '#00FF00')[i % 3]) for i in range(counts['tags'])]
    if env == 'staging':
        tags.append((len(tags) + 1, 'new-on-staging ✨', '#123456'))
    out['tags'] = _insert(cur, 'tags', ('id', 'name', 'color'), tags)

    # articles: base rows identical in both envs; staging = newer (some changed, some deleted, some added)
    n_articles = counts['articles']
    rng = random.Random(f'articles:{seed}')
    conn.commit()
    sender = _Sender(conn)
    batch = []
    article_ids = []
    try:
        for i in range(n_articles + (max(1, n_articles // 100))):
            is_new = i >= n_articles
            row = _article_row(rng, seed, i, creators, counts['authors'], common_files, long_text_every, long_text_max)
            if is_new and env == 'prod':
                continue
            if env == 'staging' and not is_new:
                if i % 97 == 5:
                    continue  # deleted on staging since the last promotion
                if i % 50 == 7:
                    row[3] = row[3] + ' (rev 2 ✅)'
                    row[18] = creators[1]
                    row[19] = datetime.datetime(2025, 6, 1, 12, 0, 0)
                    row[1] = 'published'
            if is_new and files:
                row[15] = file_ids[-1]  # a brand-new staging upload
            batch.append(row)
            article_ids.append(row[0])
            if len(batch) >= batch_rows:
                sender.insert('articles', ARTICLE_COLUMNS, batch)
                batch = []
        sender.insert('articles', ARTICLE_COLUMNS, batch)
    finally:
        out['articles'] = sender.close()

    # junction rows: deterministic from the article index, skipped for articles missing in this env
    present = set(article_ids)
    rng = random.Random(f'junction:{seed}')
    base_ids = [article_id(seed, i) for i in range(n_articles)]
    jcols = ('id', 'articles_id', 'tags_id', 'sort')
    jrows = []
    n_tags = counts['tags']
    sender = _Sender(conn)
    try:
        for j in range(counts['articles_tags']):
            aid = base_ids[rng.randrange(n_articles)]
            tid = rng.randrange(n_tags) + 1
            if aid not in present:
                continue
            jrows.append((j + 1, aid, tid, j % 7))
            if len(jrows) >= batch_rows * 4:
                sender.insert('articles_tags', jcols, jrows)
                jrows = []
        if env == 'staging':  # staging's new articles got tagged too (the newest tag included)
            next_id = counts['articles_tags'] + 1
            for aid in article_ids[len(article_ids) - max(1, n_articles // 100):]:
                jrows.append((next_id, aid, len(tags), 0))
                next_id += 1
        sender.insert('articles_tags', jcols, jrows)
    finally:
        out['articles_tags'] = sender.close()

    out['awkward_values'] = _insert(cur, 'awkward_values', AWKWARD_COLUMNS,
                                    awkward_rows(seed, counts['awkward_values'], creators))
    return out


AWKWARD_COLUMNS = ('id', 'label', 'text_value', 'long_text', 'json_value', 'dt3', 'ts', 'd', 't', 'dec_value', 'dbl',
                   'big_unsigned', 'big_signed', 'blob_value', 'geom', 'pt', 'flag', 'uuid_value', 'user_created',
                   'user_updated')


def awkward_rows(seed=0, count=12, creators=(None,)):
    """Edge-case rows for `awkward_values` (also used by tests to compare round-trips)."""
    fixed = [
        ('all nulls', None, None, None, None, None, None, None, None, None, None, None, None, None, None, None, None),
        ('empty strings', '', '', '""', None, None, None, None, Decimal('0.000000'), 0.0, 0, 0, b'', None, None, 0, ''),
        ('emoji + CJK', 'emoji 😀👍🏽👨‍👩‍👧 𝄞 東京 Ünïcødé', None, _j({'k': '😀', 'ü': ['東京', None]}),
         datetime.datetime(2024, 2, 29, 23, 59, 59, 999000), datetime.datetime(2038, 1, 19, 3, 14, 7),
         datetime.date(2024, 2, 29), datetime.timedelta(hours=23, minutes=59, seconds=59),
         Decimal('-99999999999999.999999'), -1.7976931348623157e308, 2 ** 64 - 1, -2 ** 63,
         b'\x00', _linestring([(0, 0), (1.5, 2.25), (-3, 4)]), _point(-0.0, 1e-300), 1, _uuid('awk', seed, 2)),
        ('zero bytes blob', 'tab\tnewline\nCR\rquote\'"back\\slash', None, '[1, 2.50, "\\u00fc", {"a": null}]',
         datetime.datetime(1000, 1, 1, 0, 0, 0, 1000), datetime.datetime(1970, 1, 1, 0, 0, 1),
         datetime.date(1000, 1, 1), datetime.timedelta(hours=-838, minutes=-59, seconds=-59),
         Decimal('99999999999999.999999'), 5e-324, 2 ** 63, 2 ** 63 - 1,
         bytes(range(256)) * 4 + b'\x00\x00\x00', None, _point(180, -90), 0, None),
        ('long text', 'x' * 65535, ('Ünïcødé 😀 ' * 9000) + 'END', _j({'big': 'ü' * 70000}),
         datetime.datetime(9999, 12, 31, 23, 59, 59, 999000), None, datetime.date(9999, 12, 31),
         datetime.timedelta(hours=838, minutes=59, seconds=59), Decimal('0.000001'), 0.1 + 0.2, 18446744073709551614, 1,
         random.Random(f'awk:{seed}').randbytes(70000) + b'\x00', None, None, None, None),
        ('sql-ish', "'; DROP TABLE articles; --", None, _j({'sql': "'; --", 'pct': '100%', 'us': 'a_b'}),
         datetime.datetime(2025, 3, 30, 2, 30, 0, 500000), datetime.datetime(2025, 3, 30, 1, 30, 0), None,
         datetime.timedelta(0), Decimal('-0.000001'), float(2 ** 53 + 1), 9223372036854775808, -1,
         b'%s %(x)s \\x00 \x00', None, None, 1, None),
    ]
    rows = []
    for n, vals in enumerate(fixed):
        rows.append((n + 1,) + tuple(vals) + (creators[n % len(creators)], None))
    rng = random.Random(f'awkward:{seed}')
    for n in range(len(fixed), count):
        rows.append((n + 1, f'random {n} 🎲', _LOREM[n % 1000:n % 1000 + 50], None,
                     _j({'n': n, 'f': rng.random()}), _ts3(rng), _ts(rng), (_EPOCH + datetime.timedelta(days=n)).date(),
                     datetime.timedelta(seconds=rng.randrange(86400)), Decimal(rng.randrange(-10 ** 12, 10 ** 12)).scaleb(-6),
                     rng.random(), rng.getrandbits(64), rng.getrandbits(63) - 2 ** 62, rng.randbytes(rng.randrange(1, 64)),
                     _point(rng.uniform(-180, 180), rng.uniform(-90, 90)), _point(n, -n), n % 2, _uuid('awk', seed, n),
                     creators[n % len(creators)], creators[(n + 1) % len(creators)]))
    return rows


# ----------------------------------------------------------------------------------------------------
# edits, checksums, describe

def add_custom_user_field(conn, database, field='department'):
    """Staging-only custom field on directus_users: a real column + its directus_fields row."""
    with conn.cursor() as cur:
        cur.execute(f'ALTER TABLE {_q(database)}.`directus_users` ADD COLUMN {_q(field)} varchar(255) DEFAULT NULL')
        cur.execute(f'INSERT INTO {_q(database)}.`directus_fields` (collection, field, special, interface, options, '
                    'readonly, hidden, width, note) VALUES (%s, %s, NULL, %s, %s, 0, 0, %s, %s)',
                    ('directus_users', field, 'input', _j({'placeholder': 'Abteilung / 部門'}), 'half', 'Custom field'))
        cur.execute(f'UPDATE {_q(database)}.`directus_users` SET {_q(field)} = %s WHERE email LIKE %s',
                    ('Redaktion ✍️', '%@staging.example.test'))
    conn.commit()


def staging_edit(conn, database, seed=0):
    """A realistic editor session on staging: update a few articles, add one, tweak a permission.

    Returns {'updated': [ids], 'added': [ids], 'permissions_updated': n}.
    """
    rng = random.Random(f'edit:{seed}')
    db = _q(database)
    with conn.cursor() as cur:
        cur.execute("SET SESSION time_zone = '+00:00'")
        cur.execute(f"SELECT id FROM {db}.`directus_users` WHERE email = 'editor@example.test'")
        editor = cur.fetchone()[0]
        cur.execute(f'SELECT id FROM {db}.`articles` ORDER BY id LIMIT 50')
        ids = [r[0] for r in cur.fetchall()]
        updated = rng.sample(ids, min(3, len(ids)))
        when = datetime.datetime(2025, 7, 1, 9, 0, 0) + datetime.timedelta(minutes=seed % 1000)
        for n, aid in enumerate(updated):
            cur.execute(f'UPDATE {db}.`articles` SET title = CONCAT(title, %s), body = %s, user_updated = %s, '
                        'date_updated = %s, views = %s WHERE id = %s',
                        (f' · edit {seed}.{n} 🖊', f'<p>Edited body {seed}.{n} – ünïcødé ✅</p>', editor, when,
                         2 ** 64 - 2 - n, aid))
        new_id = _uuid('edit-article', seed)
        cur.execute(f'INSERT INTO {db}.`articles` (id, status, title, slug, body, metadata, published_at, price, '
                    'views, location, signature, user_created, date_created) '
                    'VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)',
                    (new_id, 'published', f'Fresh from staging {seed} 🆕', f'fresh-{seed}-{new_id[:8]}',
                     '<p>New ✨</p>', _j({'new': True}), datetime.datetime(2025, 7, 1, 9, 30, 0, 123000),
                     Decimal('12.3400'), 2 ** 63 + seed, _point(8.5417, 47.3769), b'\x00edit\x00', editor, when))
        cur.execute(f"UPDATE {db}.`directus_permissions` SET fields = %s WHERE collection = 'articles' "
                    f"AND action = 'read' AND policy = %s", (f'id,title,slug,body,cover,edit{seed}', PUBLIC_POLICY_ID))
        perms = cur.rowcount
    conn.commit()
    return {'updated': sorted(updated), 'added': [new_id], 'permissions_updated': perms}


def _canon(value):
    if value is None:
        return b'N'
    if isinstance(value, bytes):
        return b'B%d:' % len(value) + value
    if isinstance(value, str):
        data = value.encode('utf-8')
        return b'S%d:' % len(data) + data
    if isinstance(value, bool):
        return b'b1' if value else b'b0'
    if isinstance(value, int):
        return b'I' + str(value).encode()
    if isinstance(value, float):
        return b'F' + value.hex().encode()
    if isinstance(value, Decimal):
        return b'D' + str(value).encode()
    if isinstance(value, (datetime.datetime, datetime.date, datetime.timedelta, datetime.time)):
        return b'T' + repr(value).encode()
    return b'R' + repr(value).encode()


def table_checksums(conn, database, tables=None, method='content'):
    """{table: checksum} for the base tables of `database`.

    method='content' (default): SHA-256 over every row in primary-key order with a type-tagged,
    length-prefixed encoding of each value (exact for every type, incl. NULL vs '' and binary),
    plus the column names and types; read with an unbuffered cursor.
    method='checksum_table': MariaDB's CHECKSUM TABLE ... EXTENDED (fast, as str).
    """
    import pymysql.cursors  # local: the module is importable without PyMySQL for pure helpers

    db = _q(database)
    with conn.cursor() as cur:
        cur.execute("SET SESSION time_zone = '+00:00'")
        cur.execute('SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s '
                    "AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME", (database,))
        names = [r[0] for r in cur.fetchall()]
    if tables is not None:
        wanted = set(tables)
        names = [n for n in names if n in wanted]
    result = {}
    for name in names:
        if method == 'checksum_table':
            with conn.cursor() as cur:
                cur.execute(f'CHECKSUM TABLE {db}.{_q(name)} EXTENDED')
                result[name] = str(cur.fetchone()[1])
            continue
        with conn.cursor() as cur:
            cur.execute('SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s '
                        'AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION', (database, name))
            cols = cur.fetchall()
            cur.execute('SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = %s '
                        "AND TABLE_NAME = %s AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION", (database, name))
            pk = [r[0] for r in cur.fetchall()] or [c[0] for c in cols]
        h = hashlib.sha256()
        h.update(_j([list(c) for c in cols]).encode())
        select = ', '.join(_q(c[0]) for c in cols)
        order = ', '.join(_q(c) for c in pk)
        with conn.cursor(pymysql.cursors.SSCursor) as cur:
            cur.execute(f'SELECT {select} FROM {db}.{_q(name)} ORDER BY {order}')
            while True:
                chunk = cur.fetchmany(5000)
                if not chunk:
                    break
                for row in chunk:
                    h.update(b'\x1e'.join(_canon(v) for v in row))
                    h.update(b'\x1d')
        result[name] = h.hexdigest()
    return result


def describe(conn, database):
    """Ids read back from a built database: admin user/role/policy, users by e-mail, roles/policies by name."""
    db = _q(database)
    with conn.cursor() as cur:
        cur.execute(f'SELECT id, email, role FROM {db}.`directus_users` ORDER BY email')
        users = cur.fetchall()
        cur.execute(f'SELECT id, name FROM {db}.`directus_roles` ORDER BY name')
        roles = {name: rid for rid, name in cur.fetchall()}
        cur.execute(f'SELECT id, name, admin_access FROM {db}.`directus_policies` ORDER BY name')
        pols = cur.fetchall()
        cur.execute(f'SELECT project_url FROM {db}.`directus_settings` ORDER BY id LIMIT 1')
        settings = cur.fetchone()
        cur.execute(f'SELECT COUNT(*) FROM {db}.`directus_migrations`')
        n_migrations = cur.fetchone()[0]
        cur.execute(f'SELECT id, role, user, policy FROM {db}.`directus_access` ORDER BY id')
        access = [dict(zip(('id', 'role', 'user', 'policy'), r)) for r in cur.fetchall()]
    admin_policy = next((pid for pid, _name, adm in pols if adm), None)
    admin_role = next((a['role'] for a in access if a['policy'] == admin_policy and a['role']), None)
    admin_user = next((uid for uid, _email, role in users if role == admin_role and admin_role), None)
    return {
        'database': database,
        'admin_user_id': admin_user,
        'admin_email': next((e for uid, e, _r in users if uid == admin_user), None),
        'admin_role_id': admin_role,
        'admin_policy_id': admin_policy,
        'public_policy_id': PUBLIC_POLICY_ID,
        'users': {email: uid for uid, email, _role in users},
        'user_roles': {email: role for _uid, email, role in users},
        'roles': roles,
        'policies': {name: pid for pid, name, _adm in pols},
        'access': access,
        'project_url': settings[0] if settings else None,
        'migrations': n_migrations,
    }


# ----------------------------------------------------------------------------------------------------
# assets

def build_assets(s3_client, bucket, prefix='', files=20, seed=0, size_range=(1024, 4096), thumbnails=True,
                 env='staging', workers=8):
    """Put the asset objects matching directus_files.filename_disk of (env, seed, files) into `bucket`.

    Originals `<filename_disk>` and thumbnails `<basename>__<hash><ext>` under `prefix`, with
    Content-Type and Cache-Control. Bodies are deterministic (seed, key, version); one file
    differs between staging and prod with the same size. Returns the list of full keys put.
    With the default size_range, object sizes equal directus_files.filesize of the same file.
    Every object starts with a zero byte and carries x-amz-meta-directus-file-id.
    """
    jobs = []
    for spec in file_specs(env, seed, files):
        base_size_seed = spec['size_seed']
        jobs.append((spec['filename_disk'], spec, base_size_seed))
        if thumbnails:
            for k, key in enumerate(_thumbnail_keys(spec, seed)):
                jobs.append((key, spec, (base_size_seed + 0.37 * (k + 1)) % 1.0))

    def put(job):
        key, spec, size_seed = job
        full = prefix + key
        body = _object_body(key, seed, spec['content_version'], size_range, size_seed)
        s3_client.put_object(Bucket=bucket, Key=full, Body=body, ContentType=spec['type'],
                             CacheControl=ASSET_CACHE_CONTROL, Metadata={'directus-file-id': spec['id']})
        return full

    if workers and workers > 1 and len(jobs) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(put, jobs))
    return [put(j) for j in jobs]


def fk_violations(conn, database):
    """Rows whose foreign-key columns point at nothing, per constraint: {constraint: count} (only > 0).

    The builder loads with foreign_key_checks=0, so this is how tests prove the data is consistent;
    promotion tests can use it on the target after a run.
    """
    db = _q(database)
    with conn.cursor() as cur:
        cur.execute('SELECT k.TABLE_NAME, k.CONSTRAINT_NAME, k.COLUMN_NAME, k.REFERENCED_TABLE_SCHEMA, '
                    'k.REFERENCED_TABLE_NAME, k.REFERENCED_COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE k '
                    'WHERE k.TABLE_SCHEMA = %s AND k.REFERENCED_TABLE_NAME IS NOT NULL '
                    'ORDER BY k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION', (database,))
        fks = cur.fetchall()
        bad = {}
        for table, cname, col, rschema, rtable, rcol in fks:
            cur.execute(f'SELECT COUNT(*) FROM {db}.{_q(table)} c LEFT JOIN {_q(rschema)}.{_q(rtable)} p '
                        f'ON p.{_q(rcol)} = c.{_q(col)} WHERE c.{_q(col)} IS NOT NULL AND p.{_q(rcol)} IS NULL')
            n = cur.fetchone()[0]
            if n:
                bad[f'{table}.{cname}'] = n
    return bad


# ----------------------------------------------------------------------------------------------------
# both environments at once (what playbook-level tests and the demo start from)

def bucket_listing(s3_client, bucket, prefix=''):
    """{key: (size, etag)} of every object under `prefix` in `bucket`."""
    out = {}
    for page in s3_client.get_paginator('list_objects_v2').paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get('Contents', []):
            out[obj['Key']] = (obj['Size'], obj['ETag'])
    return out


def empty_bucket(s3_client, bucket):
    keys = list(bucket_listing(s3_client, bucket))
    for start in range(0, len(keys), 1000):
        s3_client.delete_objects(Bucket=bucket, Delete={'Objects': [{'Key': k} for k in keys[start:start + 1000]]})


def build_environments(sandbox, database, seed=0, content_rows=200, files=20):
    """Rebuild staging's and prod's database and bucket on a sandbox: {env: build_directus_db result}."""
    s3 = sandbox.aws.client('s3')
    built = {}
    for env in ('staging', 'prod'):
        conn = sandbox.server(env).connect()
        try:
            built[env] = build_directus_db(conn, database, env=env, seed=seed, content_rows=content_rows, files=files)
        finally:
            conn.close()
        empty_bucket(s3, sandbox.buckets[env])
        build_assets(s3, sandbox.buckets[env], files=files, seed=seed, env=env)
    return built
