// IPv4 arithmetic for the address plan. Addresses are handled as unsigned 32-bit integers.

export interface Cidr {
  network: number;
  prefix: number;
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

export function isIpv4(text: string): boolean {
  const match = IPV4.exec(text);
  return match !== null && match.slice(1).every((octet) => Number(octet) <= 255 && String(Number(octet)) === octet);
}

export function ipToInt(text: string): number {
  if (!isIpv4(text)) throw new Error(`not an IPv4 address: "${text}"`);
  return text.split('.').reduce((acc, octet) => acc * 256 + Number(octet), 0);
}

export function intToIp(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}

export function isCidr(text: string): boolean {
  const [address, prefix, ...rest] = text.split('/');
  if (rest.length > 0 || address === undefined || prefix === undefined || !isIpv4(address)) return false;
  if (!/^\d{1,2}$/.test(prefix) || Number(prefix) > 32) return false;
  return ipToInt(address) % blockSize(Number(prefix)) === 0;
}

export function parseCidr(text: string): Cidr {
  if (!isCidr(text)) throw new Error(`not an IPv4 CIDR with its network address: "${text}"`);
  const [address, prefix] = text.split('/') as [string, string];
  return { network: ipToInt(address), prefix: Number(prefix) };
}

export function blockSize(prefix: number): number {
  return 2 ** (32 - prefix);
}

export function cidrFirst(cidr: Cidr): number {
  return cidr.network;
}

export function cidrLast(cidr: Cidr): number {
  return cidr.network + blockSize(cidr.prefix) - 1;
}

export function cidrContainsIp(cidr: Cidr, ip: number): boolean {
  return ip >= cidrFirst(cidr) && ip <= cidrLast(cidr);
}

export interface IpRange {
  first: number;
  last: number;
}

export function cidrRange(cidr: Cidr): IpRange {
  return { first: cidrFirst(cidr), last: cidrLast(cidr) };
}

export function rangesOverlap(a: IpRange, b: IpRange): boolean {
  return a.first <= b.last && b.first <= a.last;
}

export function rangeContains(outer: IpRange, inner: IpRange): boolean {
  return inner.first >= outer.first && inner.last <= outer.last;
}

/** The address `offset` hosts into `cidr` (offset 10 of 192.168.10.0/24 is 192.168.10.10). */
export function hostAt(cidr: Cidr, offset: number): string {
  return intToIp(cidr.network + offset);
}

/** Host offset of `ip` inside `cidr`. */
export function offsetIn(cidr: Cidr, ip: string): number {
  return ipToInt(ip) - cidr.network;
}

/** Splits an inclusive range into `parts` contiguous ranges; the last part takes the remainder. */
export function splitRange(range: IpRange, parts: number): IpRange[] {
  const total = range.last - range.first + 1;
  const size = Math.floor(total / parts);
  if (size < 1) throw new Error(`cannot split ${total} addresses into ${parts} ranges`);
  return Array.from({ length: parts }, (_, index) => ({
    first: range.first + index * size,
    last: index === parts - 1 ? range.last : range.first + (index + 1) * size - 1,
  }));
}

export function formatCidr(cidr: Cidr): string {
  return `${intToIp(cidr.network)}/${cidr.prefix}`;
}
