# -*- coding: utf-8 -*-
# Copyright (c) 2026, casper.directus_promote contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Runs casper.directus_promote.directus_db_replicate and prints its progress meanwhile (docs/progress.md)."""

from __future__ import annotations

from ansible_collections.casper.directus_promote.plugins.plugin_utils.progress_action import ProgressAction


class ActionModule(ProgressAction):
    pass
