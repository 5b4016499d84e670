# -*- coding: utf-8 -*-
# Copyright (c) 2026, casper.directus_promote contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The phases of ``directus_db_replicate``, one module each (private to this collection).

A promotion is a pipeline over one explicit object, ``Plan`` (``plan.py``), run by a ``Run``
(``run.py``: parameters, connections, the audit log):

1. ``preflight.gather`` reads both catalogs and returns the Plan; ``preflight.check`` adds the
   findings, remaps and mappings;
2. ``compare.decide`` decides per table (checksums, recorded state) what changes;
3. ``journal`` opens an entry in the target's state schema before anything live is touched;
4. ``copy.build_shadow`` (with ``recycle``) fills and verifies a shadow schema;
5. ``cutover.swap`` swaps it in with one ``RENAME TABLE`` and finishes the kept tables;
6. ``journal`` closes the entry together with the state the next run reads.

``recovery`` repairs an entry that a killed run left open, forward or backward from what the
server shows; ``rollback`` swaps the newest complete backup back in.

Engine seam: everything that speaks MariaDB/MySQL's dialect (catalog queries, DDL text,
literals, the atomic swap) is in ``catalog.py``, ``ddl.py`` and ``module_utils/mysql.py``;
the phases call those, so a second engine means second versions of those three.
"""
