# -*- coding: utf-8 -*-
# Copyright (c) 2026, casper.directus_promote contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # MariaDB/MySQL connection dicts of a two-sided database module (source and target).
    DOCUMENTATION = r"""
options:
  source:
    description:
      - Connection to the database promoted from (for example staging).
      - Required unless O(rollback=true).
    type: dict
    suboptions: &connection_suboptions
      host:
        description: Server host name or address.
        type: str
        default: 127.0.0.1
      port:
        description: Server TCP port.
        type: int
        default: 3306
      user:
        description: User name.
        type: str
      password:
        description:
          - Password. Only ever passed to the PyMySQL driver; never logged, never on a command line.
        type: str
      database:
        description: Database (schema) name.
        type: str
        required: true
      unix_socket:
        description: Unix socket path; used instead of the host and port when set.
        type: str
      ssl_ca:
        description: CA certificate file; enables TLS with server certificate verification.
        type: path
      connect_timeout:
        description: Seconds to wait for the connection.
        type: int
        default: 10
  target:
    description:
      - Connection to the database promoted into (for example production). Same suboptions as O(source).
    type: dict
    required: true
    # The same suboptions as source's (a YAML alias of them).
    suboptions: *connection_suboptions
"""

    # The target connection alone (modules that only work on the target).
    TARGET = r"""
options:
  target:
    description:
      - Connection to the target database (for example production).
    type: dict
    required: true
    suboptions:
      host:
        description: Server host name or address.
        type: str
        default: 127.0.0.1
      port:
        description: Server TCP port.
        type: int
        default: 3306
      user:
        description: User name.
        type: str
      password:
        description:
          - Password. Only ever passed to the PyMySQL driver; never logged, never on a command line.
        type: str
      database:
        description: Database (schema) name.
        type: str
        required: true
      unix_socket:
        description: Unix socket path; used instead of the host and port when set.
        type: str
      ssl_ca:
        description: CA certificate file; enables TLS with server certificate verification.
        type: path
      connect_timeout:
        description: Seconds to wait for the connection.
        type: int
        default: 10
"""
