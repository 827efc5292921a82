# Copyright: (c) double-boiler contributors
# BSD-2-Clause (see LICENSE)
"""Connection options of every double_boiler.paas.heroku_* module (the ``heroku`` action group)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  api_url:
    description:
      - Base URL of the Platform API.
    type: str
    default: https://api.heroku.com
  api_key:
    description:
      - API token (C(heroku authorizations:create)); defaults to the environment variable
        C(HEROKU_API_KEY). Sent only to O(api_url)'s origin; never shown.
    type: str
    required: true
  request_timeout:
    description:
      - Seconds to wait for each HTTP answer.
    type: int
    default: 30
  max_retries:
    description:
      - Retries of an answer 429 or 5xx, honouring C(Retry-After) and C(RateLimit-Remaining).
    type: int
    default: 6
notes:
  - Set these options once for a play or block with
    C(module_defaults) and C(group/double_boiler.paas.heroku).
seealso:
  - name: Heroku Platform API reference
    description: The resources and links these modules use.
    link: https://devcenter.heroku.com/articles/platform-api-reference
"""
