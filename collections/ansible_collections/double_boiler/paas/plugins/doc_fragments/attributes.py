# Copyright: (c) double-boiler contributors
# BSD-2-Clause (see LICENSE)
"""The check_mode and diff_mode attributes every double_boiler.paas module declares."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description:
      - Can run in check_mode and return changed status prediction without modifying target.
  diff_mode:
    description:
      - Will return details on what has changed (or possibly needs changing in check_mode),
        when in diff mode.
"""
