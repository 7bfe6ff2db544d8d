"""Finding an address's mail servers: built-in presets, the domain's Thunderbird-format autoconfig file,
its MX record's provider, and RFC 6186 SRV records. Each module reads one source; the account service
(``services.account.autoconfig``) asks them all and says where each setting came from."""

from webapp.adapters.autoconfig.settings import Provider, ServerSetting

__all__ = ["Provider", "ServerSetting"]
