// Mirror layout: an artifact at https://<host>/<path> lives at <mirror>/<host>/<path>.
// Pure functions; the fetcher decides what to do with the result.

import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export type ArtifactSource = { type: 'http'; url: string } | { type: 'file'; path: string };

/** The mirror from the option, else $BOXCAR_ARTIFACT_MIRROR; undefined when neither is set. */
export function resolveMirror(mirror?: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (mirror !== undefined && mirror !== '') return mirror;
  const fromEnv = env.BOXCAR_ARTIFACT_MIRROR;
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : undefined;
}

/** Where to read `url` from: the url itself without a mirror, else its place in the mirror. */
export function artifactSource(url: string, mirror: string | undefined): ArtifactSource {
  if (mirror === undefined) return { type: 'http', url };
  const upstream = new URL(url);
  const base = parseMirror(mirror);
  if (base.protocol === 'file:') {
    const segments = upstream.pathname.split('/').filter((s) => s !== '').map((s) => decodeSegment(s, url));
    return { type: 'file', path: join(fileURLToPath(base), upstream.host, ...segments) };
  }
  const prefix = base.href.replace(/\/+$/, '');
  return { type: 'http', url: `${prefix}/${upstream.host}${upstream.pathname}${upstream.search}` };
}

function parseMirror(mirror: string): URL {
  const base = URL.canParse(mirror) ? new URL(mirror) : undefined;
  if (base === undefined || !['http:', 'https:', 'file:'].includes(base.protocol) || base.search !== '' || base.hash !== '') {
    throw new Error(
      `artifact mirror must be an http://, https:// or file:/// base URL without query or fragment ` +
        `(from the mirror option or BOXCAR_ARTIFACT_MIRROR), got ${JSON.stringify(mirror)}`,
    );
  }
  return base;
}

function decodeSegment(segment: string, url: string): string {
  let decoded: string;
  try {
    decoded = decodeURIComponent(segment);
  } catch {
    throw new Error(`url ${url} has a badly percent-encoded path segment ${JSON.stringify(segment)}`);
  }
  // The URL parser already resolved "." and ".."; a decoded "/" or "%2e%2e" must not escape the mirror either.
  if (decoded === '..' || decoded === '.' || /[/\\\0]/.test(decoded)) {
    throw new Error(`url ${url} has a path segment ${JSON.stringify(decoded)} that cannot be mapped into a file mirror`);
  }
  return decoded;
}
