/**
 * One test file's Firebase Auth emulator, with a firebase-admin app pointed at it. Registers its own
 * beforeAll/afterAll (call it inside the file's describe, before the file's own hooks): the emulator
 * starts, FIREBASE_AUTH_EMULATOR_HOST names it for firebase-admin, and all of it is undone after.
 * On a machine that cannot run the emulator the file's tests skip with the reason; under CI=true
 * they fail (peer-unavailable.ts).
 */
import { deleteApp, initializeApp, type App } from 'firebase-admin/app';
import { getAuth, type Auth } from 'firebase-admin/auth';
import { afterAll, beforeAll, type TestContext } from 'vitest';
import { startFirebaseAuthEmulator, type FirebaseAuthEmulator } from './firebase-emulator.js';
import { peerOrSkip } from './peer-unavailable.js';

export interface FirebaseTestPeer {
  /** Started (the file's own beforeAll may then build on it), or undefined with `unavailable` set. */
  readonly emulator: FirebaseAuthEmulator | undefined;
  /** firebase-admin against the emulator; only once `emulator` is set. */
  readonly auth: Auth;
  /** The running emulator for a test, or a skip carrying the reason it could not be provisioned. */
  peer(ctx: TestContext): FirebaseAuthEmulator;
}

export function useFirebaseEmulator(projectId: string): FirebaseTestPeer {
  const previousEmulatorHost = process.env.FIREBASE_AUTH_EMULATOR_HOST;
  let emulator: FirebaseAuthEmulator | undefined;
  let unavailable: string | undefined;
  let app: App | undefined;
  let auth: Auth | undefined;

  beforeAll(async () => {
    const got = await peerOrSkip(`Firebase emulator ${projectId}`, () => startFirebaseAuthEmulator({ projectId }));
    if (got.unavailable !== undefined) {
      unavailable = got.unavailable;
      return;
    }
    emulator = got.peer;
    process.env.FIREBASE_AUTH_EMULATOR_HOST = emulator.host;
    app = initializeApp({ projectId }, `${projectId}-${process.pid}`);
    auth = getAuth(app);
  }, 15 * 60_000); // a clean clone first installs firebase-tools (a few minutes)

  afterAll(async () => {
    if (app) await deleteApp(app);
    if (previousEmulatorHost === undefined) delete process.env.FIREBASE_AUTH_EMULATOR_HOST;
    else process.env.FIREBASE_AUTH_EMULATOR_HOST = previousEmulatorHost;
    await emulator?.stop();
  }, 30_000);

  return {
    get emulator() {
      return emulator;
    },
    get auth() {
      if (!auth) throw new Error('the Firebase Auth emulator is not running');
      return auth;
    },
    peer(ctx) {
      if (!emulator) ctx.skip(unavailable ?? 'Firebase Auth emulator not started');
      return emulator as FirebaseAuthEmulator;
    },
  };
}
