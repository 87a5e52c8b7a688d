/**
 * The proxy keeps V8's young generation at the size it has when the proxy's modules begin to
 * load (2 MiB semi-spaces, from 1 MiB at start) instead of letting it grow to 16 MiB.
 *
 * Design note (BENCHMARKS.md, "2026-12-05: kubegate's memory"): a relayed body reaches
 * JavaScript as one Buffer per TLS record (16 KiB), from the cluster's socket and again on
 * its way to the client. Those Buffer objects are tiny and die young, but their backing
 * stores live outside V8's heap and are freed only when a scavenge finds the objects dead.
 * Once the new space has grown to 16 MiB semi-spaces, a scavenge comes only after ~16 MiB of
 * small objects, so tens of MiB of dead read buffers wait for it (`arrayBuffers` in
 * `process.memoryUsage()`), on top of the 32 MiB the grown new space itself commits. That
 * was most of the proxy's peak RSS during large lists. The semi-space size is fixed when the
 * isolate is made (`--max-semi-space-size` set at run time changes nothing), but the growth
 * factor is read each time the new space would grow: 1 keeps it where it is (main.ts calls
 * this before importing the proxy; V8 may still shrink it when the proxy idles). The CPU
 * this costs (more, smaller scavenges) was measured in paired runs, small GETs and large
 * lists both (BENCHMARKS.md). An operator's own semi-space flags win: then nothing is set (of
 * the three, NODE_OPTIONS accepts only `--max-semi-space-size`; the node command line all).
 */
import { setFlagsFromString } from 'node:v8';

const OPERATOR_SEMI_SPACE_FLAG = /--(?:max|min)[-_]semi[-_]space[-_]size|--semi[-_]space[-_]growth[-_]factor/;

/** Call before the proxy's modules load; answers whether the growth was turned off (false when the operator set semi-space flags). */
export function keepYoungGenerationSmall(execArgv: readonly string[] = process.execArgv, nodeOptions: string = process.env['NODE_OPTIONS'] ?? ''): boolean {
  if ([...execArgv, nodeOptions].some((option) => OPERATOR_SEMI_SPACE_FLAG.test(option))) return false;
  setFlagsFromString('--semi-space-growth-factor=1');
  return true;
}
