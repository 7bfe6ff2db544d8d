"""Password-guess throttling shared by every process through Redis.

Each password check first takes a slot, atomically (one Lua script): it is refused when the counter of
the (name, address) pair has reached ``LOGIN_MAX_FAILURES``, or that of the address alone four times as
many; otherwise both counters go up before the password is looked at. A right password gives the slot
back (the pair's counter is cleared). So however many guesses arrive at once, exactly
``LOGIN_MAX_FAILURES`` of them are checked, and guesses from one address never lock the name out for
everyone else: there is deliberately no counter per name alone.

Behind a reverse proxy, every request comes from the proxy's address unless ``PROXY_FIX_X_FOR`` says
how many proxies to trust (webapp.security warns once when it sees X-Forwarded-For without it).
"""

from __future__ import annotations

import hashlib
import ipaddress

from flask import current_app

from webapp.models.user import User
from webapp.services.platform.redisconn import coordination

PREFIX = "login-failures:"  # under the app's key prefix (webapp.adapters.coordination)
# An address gets more tries than a pair: several people may share one address (an office NAT).
ADDRESS_FACTOR = 4

# KEYS: the counters; ARGV: their limits, then the window in seconds. Returns 0 (slot taken) or the
# seconds until the fullest counter expires.
_TAKE = """
local wait = 0
for i, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') >= tonumber(ARGV[i]) then
    local ttl = redis.call('TTL', key)
    if ttl < 1 then ttl = 1 end
    if ttl > wait then wait = ttl end
  end
end
if wait > 0 then return wait end
local window = ARGV[#KEYS + 1]
for _, key in ipairs(KEYS) do
  redis.call('INCR', key)
  if redis.call('TTL', key) < 0 then redis.call('EXPIRE', key, window) end
end
return 0
"""

# KEYS: the pair's counter, the address's counter. The pair starts afresh; the address gets its slot back.
_GIVE_BACK = """
redis.call('DEL', KEYS[1])
if tonumber(redis.call('GET', KEYS[2]) or '0') > 0 then redis.call('DECR', KEYS[2]) end
return 0
"""


def _keys(username: str, remote_addr: str | None) -> list[str]:
    name = hashlib.sha256(User.key_for(username).encode()).hexdigest()[:32]
    address = _network(remote_addr)
    return [f"{PREFIX}pair:{name}:{address}", f"{PREFIX}addr:{address}"]


def _network(remote_addr: str | None) -> str:
    """What one client controls: an IPv4 address, or the /64 network of an IPv6 one (a single host is
    given a whole /64 and may use any address in it)."""
    try:
        address = ipaddress.ip_address(remote_addr or "")
    except ValueError:
        return remote_addr or "unknown"
    if address.version == 6 and address.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address.ipv4_mapped or address) if address.version == 6 else str(address)


def take(username: str, remote_addr: str | None) -> int:
    """Take a slot for one password check: 0 when it may go ahead (it counts as a failure until
    ``succeeded``), else the seconds until the next check may be tried."""
    limit = int(current_app.config["LOGIN_MAX_FAILURES"])
    window = int(current_app.config["LOGIN_LOCKOUT_SECONDS"])
    keys = _keys(username, remote_addr)
    return int(coordination().script(_TAKE, keys, [limit, limit * ADDRESS_FACTOR, window]))


def succeeded(username: str, remote_addr: str | None) -> None:
    """The checked password was right: forget this pair's failures and give the address its slot back."""
    coordination().script(_GIVE_BACK, _keys(username, remote_addr), [])
