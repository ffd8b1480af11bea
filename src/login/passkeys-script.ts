import { createHash } from 'node:crypto';

/**
 * The hosted pages' only script (served same-origin, so the pages' CSP stays `script-src 'self'`):
 * it reveals the passkey forms where the browser has WebAuthn, runs the ceremony with the options
 * the form carries (`data-options`, what @simplewebauthn/server generated), and posts the
 * credential as JSON in the form's `credential` field. Without JavaScript the forms stay hidden and
 * the page works with its other forms. Plain ES2020, no dependencies.
 */
export const PASSKEYS_SCRIPT = `(() => {
  'use strict';
  const toBuffer = (s) => {
    const b = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4));
    const out = new Uint8Array(b.length);
    for (let i = 0; i < b.length; i++) out[i] = b.charCodeAt(i);
    return out.buffer;
  };
  const toBase64url = (buf) => {
    let b = '';
    for (const x of new Uint8Array(buf)) b += String.fromCharCode(x);
    return btoa(b).replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '');
  };
  const withIds = (list) => (list || []).map((c) => Object.assign({}, c, { id: toBuffer(c.id) }));
  const common = (c) => ({
    id: c.id,
    rawId: toBase64url(c.rawId),
    type: c.type,
    authenticatorAttachment: c.authenticatorAttachment || undefined,
    clientExtensionResults: c.getClientExtensionResults(),
  });
  async function ceremony(kind, options) {
    if (kind === 'create') {
      const publicKey = Object.assign({}, options, {
        challenge: toBuffer(options.challenge),
        user: Object.assign({}, options.user, { id: toBuffer(options.user.id) }),
        excludeCredentials: withIds(options.excludeCredentials),
      });
      const c = await navigator.credentials.create({ publicKey });
      return Object.assign(common(c), {
        response: {
          clientDataJSON: toBase64url(c.response.clientDataJSON),
          attestationObject: toBase64url(c.response.attestationObject),
          transports: typeof c.response.getTransports === 'function' ? c.response.getTransports() : [],
        },
      });
    }
    const publicKey = Object.assign({}, options, {
      challenge: toBuffer(options.challenge),
      allowCredentials: withIds(options.allowCredentials),
    });
    const c = await navigator.credentials.get({ publicKey });
    return Object.assign(common(c), {
      response: {
        clientDataJSON: toBase64url(c.response.clientDataJSON),
        authenticatorData: toBase64url(c.response.authenticatorData),
        signature: toBase64url(c.response.signature),
        userHandle: c.response.userHandle ? toBase64url(c.response.userHandle) : undefined,
      },
    });
  }
  if (typeof window.PublicKeyCredential !== 'function' || !navigator.credentials) return;
  for (const form of document.querySelectorAll('form[data-webauthn]')) {
    const section = form.closest('[data-passkey]') || form;
    const status = section.querySelector('[data-passkey-status]');
    section.hidden = false;
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      if (status) status.textContent = '';
      try {
        const credential = await ceremony(form.dataset.webauthn, JSON.parse(form.dataset.options));
        form.elements.namedItem('credential').value = JSON.stringify(credential);
        form.submit();
      } catch (err) {
        if (status) status.textContent = err && err.name === 'NotAllowedError' ? form.dataset.cancelled : form.dataset.failed;
      }
    });
  }
})();
`;

/** A content hash in the script's URL: it can be cached for a year and still change with a release. */
export const PASSKEYS_SCRIPT_PATH = `/login/assets/passkeys-${createHash('sha256').update(PASSKEYS_SCRIPT).digest('hex').slice(0, 12)}.js`;
