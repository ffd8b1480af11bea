/**
 * Dev helper: installs the pinned firebase-tools (once, into .cache/firebase-tools) and runs the Firebase
 * Auth emulator until Ctrl-C.
 *
 *   node --import @swc-node/register/esm-register scripts/firebase-emulator.ts [demo-project-id]
 *
 * Then point firebase-admin at it with FIREBASE_AUTH_EMULATOR_HOST=<printed host>.
 */
import { startFirebaseAuthEmulator, type FirebaseAuthEmulator } from '../test/peers/firebase-emulator.js';

const projectId = process.argv[2] ?? process.env.FIREBASE_PROJECT_ID ?? 'demo-auth-service';

let emulator: FirebaseAuthEmulator | undefined;
let stopping = false;
const shutdown = (signal: NodeJS.Signals) => {
  if (stopping) return;
  stopping = true;
  console.log(`\n${signal}: stopping the emulator…`);
  // Still starting: exiting is enough, the harness kills what it spawned on process exit.
  if (!emulator) process.exit(130);
  emulator.stop().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
};
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);

const started = Date.now();
console.log(`Starting the Firebase Auth emulator for ${projectId} (the first run installs firebase-tools)…`);
emulator = await startFirebaseAuthEmulator({ projectId });
console.log(`Ready in ${((Date.now() - started) / 1000).toFixed(1)} s.`);
console.log(`  FIREBASE_AUTH_EMULATOR_HOST=${emulator.host}`);
console.log(`  project id: ${emulator.projectId}`);
console.log(
  `  sign-in:    POST http://${emulator.host}/identitytoolkit.googleapis.com/v1/accounts:signInWithPassword?key=${emulator.apiKey}`,
);
console.log('Press Ctrl-C to stop.');

// keep the event loop alive until a signal arrives
setInterval(() => undefined, 1 << 30);
