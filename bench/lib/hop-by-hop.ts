/**
 * The headers the proxy anchors never pass on, in either direction (RFC 9110
 * §7.6.1), plus `host` and `expect`, which undici sets or refuses itself.
 */
export const HOP_BY_HOP: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host', 'expect'])
