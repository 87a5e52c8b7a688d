/**
 * The reference row of the webhook scenario: a bare node:http server that reads a
 * TokenReview, parses it and answers every one with the same authenticated reply — no
 * lookup, no hash, no metrics. It is the floor any Node webhook stands on, as the bare
 * forwarders are for the proxy.
 * Usage: node bench/review-reference.ts PORT (type-stripped by tsx); prints one JSON line when ready.
 */
import http from 'node:http';

const port = Number(process.argv[2] ?? 0);
const server = http.createServer({ keepAliveTimeout: 300_000 }, (req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const review = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { apiVersion?: string; spec?: { token?: string } };
    const reply = JSON.stringify({
      apiVersion: review.apiVersion,
      kind: 'TokenReview',
      metadata: { creationTimestamp: null },
      spec: {},
      status: { authenticated: typeof review.spec?.token === 'string', user: { username: 'u-bench', groups: ['local://bench'] } },
    });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(reply) });
    res.end(reply);
  });
});
server.listen({ host: '127.0.0.1', port }, () => {
  const address = server.address();
  process.stdout.write(`${JSON.stringify({ ready: true, url: `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}` })}\n`);
});
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
