import type { ProviderName } from '@boxcar/model';
import type { NodeProvider } from './provider.ts';
import { qemuProvider } from './qemu/node-provider.ts';
import { vagrantProvider } from './vagrant/node-provider.ts';

/** Every provider, by the name a cluster config gives. A new provider is its folder and one line here. */
const PROVIDERS: Record<ProviderName, NodeProvider> = {
  qemu: qemuProvider,
  libvirt: vagrantProvider('libvirt'),
  virtualbox: vagrantProvider('virtualbox'),
};

export function nodeProvider(name: ProviderName): NodeProvider {
  const provider = PROVIDERS[name];
  if (!provider) throw new Error(`unknown provider "${name}"; providers: ${Object.keys(PROVIDERS).join(', ')}`);
  return provider;
}

/** Every provider's name, in the registry's order. */
export function providerNames(): ProviderName[] {
  return Object.keys(PROVIDERS) as ProviderName[];
}
