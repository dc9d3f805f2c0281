import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { shellQuote, shellQuoteForPeople } from './shell.ts';

describe('shellQuote', () => {
  it('quotes every word so the remote shell gets it verbatim', () => {
    expect(shellQuote('/etc/cni/net.d/10-ipvlan.conf')).toBe("'/etc/cni/net.d/10-ipvlan.conf'");
    expect(shellQuote("it's $HOME; rm -rf /")).toBe(`'it'\\''s $HOME; rm -rf /'`);
    expect(shellQuote('')).toBe("''");
  });

  it('gives sh every word back unchanged', () => {
    const words = ['plain', '', "it's", 'a b', '$HOME', '`id`', '*', '~', 'x=1', '=ls', '{a,b}', 'line\nbreak', "'", '\\', '-n'];
    const printed = execFileSync('sh', ['-c', `printf '%s\\0' ${words.map(shellQuote).join(' ')}`]).toString();
    expect(printed.split('\0').slice(0, -1)).toEqual(words);
  });

  it('leaves plain words bare in commands printed for people, and quotes the rest as for a shell', () => {
    expect(shellQuoteForPeople('/tmp/boxcar/state')).toBe('/tmp/boxcar/state');
    expect(shellQuoteForPeople('--profile')).toBe('--profile');
    expect(shellQuoteForPeople('a b')).toBe("'a b'");
    expect(shellQuoteForPeople('=ls')).toBe("'=ls'");
    expect(shellQuoteForPeople('$HOME')).toBe("'$HOME'");
  });
});
