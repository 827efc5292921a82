"""Who is asking: the client address the per-client limits count against.

Behind a platform's router the TCP peer is the router, and the client's
address is in X-Forwarded-For. Only the entries the routers themselves wrote
can be trusted: a client may send its own X-Forwarded-For, and the routers
keep what it wrote and add theirs after it.

- Heroku's router appends the connecting address as the last entry
  (https://devcenter.heroku.com/articles/http-routing#heroku-headers).
- Dokku's nginx sets the header to `$remote_addr` by default, dropping what
  the client sent (dokku/dokku plugins/nginx-vhosts/templates/nginx.conf.sigil,
  `proxy_set_header X-Forwarded-For {{ $.PROXY_X_FORWARDED_FOR }}`, whose
  default is `$remote_addr` in plugins/nginx-vhosts/nginx_vhosts.go,
  ComputedXForwardedForValue).

Either way, with TRUSTED_PROXY_HOPS proxies in front, the client is the entry
that many places from the end. With 0 (no router: the local target) the
header is ignored and the TCP peer is the client.

IPv6 clients count by their /64: one host usually owns a whole /64 and could
otherwise take a new address for every request.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest

IPV6_PREFIX = 64
UNKNOWN = "unknown"


def normalise(address: str) -> str | None:
    try:
        parsed = ipaddress.ip_address(address.strip())
    except ValueError:
        return None
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/{IPV6_PREFIX}", strict=False))
    return str(parsed)


def client_address(request: HttpRequest) -> str:
    hops = settings.TRUSTED_PROXY_HOPS
    peer = normalise(request.META.get("REMOTE_ADDR", "")) or UNKNOWN
    if hops <= 0:
        return peer
    # The WSGI server joins repeated headers with commas.
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    entries = [entry.strip() for entry in forwarded.split(",") if entry.strip()]
    if len(entries) < hops:
        # Not what the router sends: do not let the header speak, count the peer.
        return peer
    return normalise(entries[-hops]) or peer
