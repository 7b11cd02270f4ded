"""Where a webhook may point: http(s) URLs whose host resolves only to public addresses (unless allowed).

Checked when a webhook is added and again at every delivery, which then connects to the very address it
checked: a name re-pointed at a private address after the first check (DNS rebinding) is refused too.
"""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeUrl(ValueError):
    """A URL a webhook may not use; the message says why."""


@dataclass(frozen=True)
class Target:
    """A checked URL: its parts, and the address to connect to."""

    scheme: str
    host: str
    port: int
    address: IpAddress

    def url_for(self, url: str) -> str:
        """`url` with its host replaced by the checked address (the Host header and TLS name stay the host)."""
        parts = urlsplit(url)
        literal = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return parts._replace(netloc=f"{literal}:{self.port}").geturl()


def split_url(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL, or UnsafeUrl saying what is wrong with it."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl(f"not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise UnsafeUrl(f"must be http or https, not {parts.scheme or 'no scheme'!r}")
    if not parts.hostname:
        raise UnsafeUrl("has no host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl("must not carry a user name or password (sign with the webhook's secret instead)")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


NAT64_PREFIXES = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # the deprecated `::a.b.c.d`
IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")  # SIIT's `::ffff:0:a.b.c.d`


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries, by every form that routes to them: mapped (`::ffff:a.b.c.d`),
    6to4 (`2002:AABB:CCDD::`), Teredo (server and client), NAT64 (`64:ff9b::a.b.c.d`), IPv4-compatible
    (`::a.b.c.d`) and IPv4-translated."""
    found = [v4 for v4 in (address.ipv4_mapped, address.sixtofour) if v4 is not None]
    if address.teredo is not None:
        found.extend(address.teredo)
    if any(address in prefix for prefix in (*NAT64_PREFIXES, IPV4_COMPATIBLE, IPV4_TRANSLATED)):
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def is_public(address: IpAddress) -> bool:
    """A global unicast address: not loopback, private, link-local (cloud metadata), shared, reserved or multicast;
    an IPv6 address that carries an IPv4 one (6to4, NAT64, ...) only when that one is public too."""
    if isinstance(address, ipaddress.IPv6Address):
        carried = embedded_ipv4(address)
        if carried:
            return all(is_public(v4) for v4 in carried)
    return address.is_global and not address.is_multicast


def resolve(host: str, port: int) -> list[IpAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeUrl(f"its host {host!r} does not resolve ({exc})") from None
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def check_url(url: str, allow_private: bool) -> Target:
    """The address to send to, when every address the host resolves to may be reached; else UnsafeUrl."""
    scheme, host, port = split_url(url)
    addresses = resolve(host, port)
    if not allow_private:
        refused = [address for address in addresses if not is_public(address)]
        if refused:
            raise UnsafeUrl(
                f"its host {host!r} resolves to {refused[0]}, a loopback, private, link-local or reserved address "
                "(set WEBHOOK_ALLOW_PRIVATE=true to allow it)"
            )
    return Target(scheme, host, port, addresses[0])
