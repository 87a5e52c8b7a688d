/** Reads a /metrics exposition over plain HTTP (a metrics listener, the webhook's loopback listener). */
import http from 'node:http';

/** The text `GET <url>/metrics` answers. */
export function scrapeMetrics(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get(`${url}/metrics`, (response) => {
        let text = '';
        response.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
        response.on('end', () => resolve(text));
      })
      .on('error', reject);
  });
}
