import { homedir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveCacheDir } from './cache.ts';
import { artifactSource, resolveMirror } from './mirror.ts';

describe('artifactSource', () => {
  it('uses the url itself without a mirror', () => {
    expect(artifactSource('https://dl.k8s.io/v1.3.0/kubelet', undefined)).toEqual({ type: 'http', url: 'https://dl.k8s.io/v1.3.0/kubelet' });
  });

  it('maps https://host/path to <mirror>/host/path, keeping port and query', () => {
    expect(artifactSource('https://storage.googleapis.com/kubernetes-release/release/v1.3.0/bin/linux/amd64/kubelet', 'http://127.0.0.1:8080/mirror')).toEqual({
      type: 'http',
      url: 'http://127.0.0.1:8080/mirror/storage.googleapis.com/kubernetes-release/release/v1.3.0/bin/linux/amd64/kubelet',
    });
    expect(artifactSource('http://example.org:8443/a%20b/c?x=1', 'http://127.0.0.1:8080/mirror/')).toEqual({
      type: 'http',
      url: 'http://127.0.0.1:8080/mirror/example.org:8443/a%20b/c?x=1',
    });
  });

  it('maps to <dir>/host/<decoded path> for a file:// mirror', () => {
    expect(artifactSource('https://deb.example.org/pool/main/v/vpp/vpp%2B1_amd64.deb', 'file:///srv/mirror')).toEqual({
      type: 'file',
      path: '/srv/mirror/deb.example.org/pool/main/v/vpp/vpp+1_amd64.deb',
    });
  });

  it('refuses path segments that would escape a file mirror', () => {
    expect(() => artifactSource('https://h.example/a/%2e%2e%2f..%2fetc/passwd', 'file:///srv/mirror')).toThrow(/cannot be mapped into a file mirror/);
    expect(() => artifactSource('https://h.example/a%2Fb', 'file:///srv/mirror')).toThrow(/"a\/b"/);
  });

  it('names the setting when the mirror is not a usable base URL', () => {
    for (const bad of ['ftp://mirror/x', '/srv/mirror', 'http://m/x?y=1']) {
      expect(() => artifactSource('https://h.example/f', bad)).toThrow(/BOXCAR_ARTIFACT_MIRROR/);
    }
  });
});

describe('settings', () => {
  it('prefers the mirror option, then BOXCAR_ARTIFACT_MIRROR', () => {
    expect(resolveMirror('http://a/m', { BOXCAR_ARTIFACT_MIRROR: 'http://b/m' })).toBe('http://a/m');
    expect(resolveMirror(undefined, { BOXCAR_ARTIFACT_MIRROR: 'http://b/m' })).toBe('http://b/m');
    expect(resolveMirror(undefined, { BOXCAR_ARTIFACT_MIRROR: '' })).toBeUndefined();
  });

  it('prefers the cacheDir option, then BOXCAR_ARTIFACT_CACHE, then XDG_CACHE_HOME, then ~/.cache', () => {
    const env = { BOXCAR_ARTIFACT_CACHE: '/c', XDG_CACHE_HOME: '/x' };
    expect(resolveCacheDir('/o', env)).toBe('/o');
    expect(resolveCacheDir(undefined, env)).toBe('/c');
    expect(resolveCacheDir(undefined, { XDG_CACHE_HOME: '/x' })).toBe('/x/boxcar/artifacts');
    expect(resolveCacheDir(undefined, {})).toBe(join(homedir(), '.cache', 'boxcar', 'artifacts'));
  });
});
