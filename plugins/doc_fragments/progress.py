# -*- coding: utf-8 -*-
# Copyright (c) 2026, casper.directus_promote contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Live progress of long phases: docs/progress.md explains the mechanism.
    DOCUMENTATION = r"""
options:
  progress_interval:
    description:
      - Seconds between two progress lines of a long phase (what it does, done of total, rate, ETA) in the
        play's output. V(0) shows none.
      - Shown when the module runs on the controller as the same user (connection C(local), no become, not async).
    type: float
    default: 10
  progress_file:
    description:
      - Where the module writes its progress (JSON). Set by the collection's action plugin; set it yourself only
        to watch a module that runs elsewhere.
    type: path
"""
