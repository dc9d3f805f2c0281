// Reading from http(s) stores with node's own clients.
import http from 'node:http';
import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import { BoxStoreError } from './errors.ts';

const MAX_REDIRECTS = 5;
const IDLE_TIMEOUT_MS = 60_000;

function request(url: string): Promise<IncomingMessage> {
  const client = url.startsWith('https:') ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.get(url, { headers: { 'user-agent': 'boxcar-box-store' } }, resolve);
    req.setTimeout(IDLE_TIMEOUT_MS, () => req.destroy(new BoxStoreError('http', `GET ${url}: no data for ${IDLE_TIMEOUT_MS / 1000} s`, url)));
    req.on('error', (error) =>
      reject(error instanceof BoxStoreError ? error : new BoxStoreError('http', `GET ${url}: ${error.message}`, url, { cause: error })),
    );
  });
}

/** GET with redirects followed; resolves with the 200 response (body unread), undefined on 404. */
export async function httpGetOptional(url: string): Promise<IncomingMessage | undefined> {
  let current = url;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const response = await request(current);
    const status = response.statusCode ?? 0;
    if (status === 200) return response;
    response.resume();
    if (status === 404 || status === 410) return undefined;
    const location = response.headers.location;
    if (status >= 300 && status < 400 && location) {
      current = new URL(location, current).href;
      continue;
    }
    throw new BoxStoreError('http', `GET ${current}: HTTP ${status} ${response.statusMessage ?? ''}`.trim(), current);
  }
  throw new BoxStoreError('http', `GET ${url}: more than ${MAX_REDIRECTS} redirects`, url);
}

export async function httpGet(url: string): Promise<IncomingMessage> {
  const response = await httpGetOptional(url);
  if (!response) throw new BoxStoreError('not-found', `GET ${url}: not found (HTTP 404)`, url);
  return response;
}

export async function httpGetTextOptional(url: string): Promise<string | undefined> {
  const response = await httpGetOptional(url);
  if (!response) return undefined;
  response.setEncoding('utf8');
  let text = '';
  for await (const chunk of response) text += chunk as string;
  return text;
}
