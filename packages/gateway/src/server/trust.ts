import proxyAddr from 'proxy-addr'

/** Whether the peer at hop `i` may set X-Forwarded-* (the same rules fastify applies to `trustProxy`). */
export type TrustFn = (address: string, hop: number) => boolean

export function compileTrust (opt: boolean | string | string[] | number | undefined): TrustFn {
  if (opt === undefined || opt === false) return () => false
  if (opt === true) return () => true
  if (typeof opt === 'number') return (_a, hop) => hop < opt
  const list = typeof opt === 'string' ? opt.split(',').map(s => s.trim()) : opt
  return proxyAddr.compile(list)
}
