import { homedir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { defaultStoreUrl, parseStoreUrl } from './store-url.ts';

describe('defaultStoreUrl', () => {
  it('is ${XDG_CACHE_HOME:-~/.cache}/boxcar/store as a file URL', () => {
    expect(defaultStoreUrl({ XDG_CACHE_HOME: '/var/cache/me' })).toBe('file:///var/cache/me/boxcar/store');
    expect(defaultStoreUrl({})).toBe(`file://${homedir()}/.cache/boxcar/store`);
    // The XDG spec says relative values are to be ignored.
    expect(defaultStoreUrl({ XDG_CACHE_HOME: 'cache' })).toBe(`file://${homedir()}/.cache/boxcar/store`);
  });

  it('is overridden by BOXCAR_STORE', () => {
    expect(defaultStoreUrl({ BOXCAR_STORE: 'https://boxes.example.test/team/', XDG_CACHE_HOME: '/x' })).toBe('https://boxes.example.test/team');
    expect(defaultStoreUrl({ BOXCAR_STORE: '/mnt/team drive/store' })).toBe('file:///mnt/team%20drive/store');
    expect(() => defaultStoreUrl({ BOXCAR_STORE: 'team/store' })).toThrow('BOXCAR_STORE must be file:///absolute/path, http(s)://host/base, or an absolute path (got "team/store")');
  });
});

describe('parseStoreUrl', () => {
  it('normalizes file and http addresses', () => {
    expect(parseStoreUrl('file:///srv/store/')).toEqual({ kind: 'file', root: '/srv/store', url: 'file:///srv/store' });
    expect(parseStoreUrl('/srv/x/../store')).toEqual({ kind: 'file', root: '/srv/store', url: 'file:///srv/store' });
    expect(parseStoreUrl('http://127.0.0.1:8080/boxes/')).toEqual({ kind: 'http', url: 'http://127.0.0.1:8080/boxes' });
  });

  it('rejects what it cannot serve, saying what is allowed', () => {
    expect(() => parseStoreUrl('ftp://host/x')).toThrow(/store URL must be file:\/\/\/absolute\/path, http\(s\):\/\/host\/base, or an absolute path \(got "ftp:\/\/host\/x"\)/);
    expect(() => parseStoreUrl('file://otherhost/x')).toThrow(/store URL "file:\/\/otherhost\/x": .*host/);
    expect(() => parseStoreUrl('http://h/x?y=1')).toThrow(/must not have a query or fragment/);
  });
});
