/**
 * The import rules of src/ (npm run lint:imports, part of npm test). Rooms, lowest first:
 *
 *   0  tokens/ config/ crypto/ errors.ts log.ts version.ts
 *   1  auth/ store/ kube/ providers/ pki/ tunnel/ issuer/ metrics.ts
 *   2  clusters/ sync/
 *   3  proxy/ webhook/ agent/ cli/ console/ server.ts
 *   4  cmd/
 *
 * A room never imports a higher one, and nothing imports in a circle. Within room 1, the
 * authentication library knows only the lookups it is given (auth/lookups.ts): it imports
 * neither the store nor the providers, which build on it.
 *
 * One known exception, until the secret key's format moves below config/: configuration
 * validation parses `secretKey` with store/secret-box.ts's parser.
 */
const KNOWN_EXCEPTION = { from: '^src/config/proxy[.]ts$', to: '^src/store/secret-box[.]ts$' };
const rooms = [
  '^src/(tokens|config|crypto)/|^src/(errors|log|version)[.]ts$',
  '^src/(auth|store|kube|providers|pki|tunnel|issuer)/|^src/metrics[.]ts$',
  '^src/(clusters|sync)/',
  '^src/(proxy|webhook|agent|cli|console)/|^src/server[.]ts$',
  '^src/cmd/',
];

const upward = rooms.flatMap((room, level) =>
  rooms.slice(level + 1).map((higher, offset) => ({
    name: `room-${level}-imports-room-${level + 1 + offset}`,
    comment: 'a lower room never imports a higher one (see the room order above)',
    severity: 'error',
    from: { path: room },
    to: level === 0 && offset === 0 ? { path: higher, pathNot: KNOWN_EXCEPTION.to } : { path: higher },
  })),
);

const upwardToSecretBox = [
  {
    name: 'room-0-imports-the-secret-box',
    comment: 'only configuration validation may (see the known exception above)',
    severity: 'error',
    from: { path: rooms[0], pathNot: KNOWN_EXCEPTION.from },
    to: { path: KNOWN_EXCEPTION.to },
  },
];

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'modules that import each other cannot be understood (or tested) one at a time',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'auth-knows-only-its-lookups',
      comment: 'the authentication library is given its lookups; the store and the providers build on it',
      severity: 'error',
      from: { path: '^src/auth/' },
      to: { path: '^src/(store|providers)/' },
    },
    {
      name: 'every-module-has-a-room',
      comment: 'a new folder under src/ gets a place in the room order above',
      severity: 'error',
      from: { path: '^src/', pathNot: rooms },
      to: {},
    },
    ...upward,
    ...upwardToSecretBox,
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: '^(test|bench|scripts|dist)/' },
  },
};
