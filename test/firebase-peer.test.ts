/**
 * Proves the Firebase Auth emulator harness against the real emulator, with firebase-admin as the client:
 * user management, emulator-issued ID tokens, and the disabled / revoked checks of `verifyIdToken(t, true)`.
 *
 * Emulator mode is process-wide in firebase-admin (FIREBASE_AUTH_EMULATOR_HOST) and makes verifyIdToken
 * accept unsigned tokens, so this file sets it only for its own worker process and restores it afterwards.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { useFirebaseEmulator } from './peers/firebase-test-peer.js';

const PROJECT_ID = 'demo-auth-service-peer';

describe('Firebase Auth emulator peer', () => {
  const firebase = useFirebaseEmulator(PROJECT_ID);
  const peer = firebase.peer;

  let seq = 0;
  const newUser = async (): Promise<{ uid: string; email: string; password: string }> => {
    const email = `user${++seq}-${Date.now()}@example.test`;
    const password = `pw-${seq}-correct horse`;
    const user = await firebase.auth.createUser({ email, password, displayName: `User ${seq}` });
    return { uid: user.uid, email, password };
  };

  it('creates a user with firebase-admin and verifies the ID token the emulator issues', async (ctx) => {
    const fb = peer(ctx);
    expect(fb.host).toMatch(/^127\.0\.0\.1:\d+$/);
    const { uid, email, password } = await newUser();

    const session = await fb.signInWithPassword(email, password);
    expect(session.localId).toBe(uid);
    expect(session.refreshToken).not.toHaveLength(0);

    const decoded = await firebase.auth.verifyIdToken(session.idToken);
    expect(decoded.uid).toBe(uid);
    expect(decoded.email).toBe(email);
    expect(decoded.aud).toBe(PROJECT_ID);
    expect(decoded.iss).toBe(`https://securetoken.google.com/${PROJECT_ID}`);
    expect(decoded.firebase.sign_in_provider).toBe('password');

    await expect(firebase.auth.verifyIdToken(session.idToken, true)).resolves.toMatchObject({ uid });
    await expect(fb.signInWithPassword(email, 'wrong password')).rejects.toThrow(/INVALID_(PASSWORD|LOGIN_CREDENTIALS)/);
  });

  it('refuses the token of a disabled user when revocation is checked', async (ctx) => {
    const fb = peer(ctx);
    const { uid, email, password } = await newUser();
    const { idToken } = await fb.signInWithPassword(email, password);

    await firebase.auth.updateUser(uid, { disabled: true });

    await expect(firebase.auth.verifyIdToken(idToken, true)).rejects.toMatchObject({ code: 'auth/user-disabled' });
    await expect(fb.signInWithPassword(email, password)).rejects.toThrow(/USER_DISABLED/);
  });

  it('refuses a token issued before revokeRefreshTokens when revocation is checked', async (ctx) => {
    const fb = peer(ctx);
    const { uid, email, password } = await newUser();
    const { idToken } = await fb.signInWithPassword(email, password);
    await expect(firebase.auth.verifyIdToken(idToken, true)).resolves.toMatchObject({ uid });

    // Revocation compares auth_time with tokensValidAfterTime at one-second resolution.
    await sleep(1_100);
    await firebase.auth.revokeRefreshTokens(uid);

    await expect(firebase.auth.verifyIdToken(idToken, true)).rejects.toMatchObject({ code: 'auth/id-token-revoked' });

    // A fresh sign-in after the revocation is accepted again.
    await sleep(1_100);
    const fresh = await fb.signInWithPassword(email, password);
    await expect(firebase.auth.verifyIdToken(fresh.idToken, true)).resolves.toMatchObject({ uid });
  });
});
