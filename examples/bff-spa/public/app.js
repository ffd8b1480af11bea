// The SPA: no framework, no tokens. It asks its BFF (same origin, session cookie) who is signed in.

const MESSAGES = {
  unknown_organization: 'We do not know that organisation. Check the spelling and try again.',
  invalid_organization: 'Enter your organisation: letters, digits and dashes.',
  access_denied: 'The sign-in was cancelled or refused.',
  temporarily_unavailable: 'Sign-in is not available right now. Try again in a minute.',
  login_required: 'Please sign in again.',
  unauthorized_client: 'This application may not sign in users of that organisation.',
  login_expired: 'The sign-in took too long. Please try again.',
  login_failed: 'The sign-in failed. Please try again.',
  session_ended: 'Your session has ended. Please sign in again.',
  api_failed: 'The API call failed. Try again.',
};

const $ = (id) => document.getElementById(id);

function showError(code) {
  $('error').textContent = MESSAGES[code] ?? MESSAGES.login_failed;
  $('error').hidden = false;
}

async function loadMe() {
  const res = await fetch('/api/me', { headers: { accept: 'application/json' } });
  if (res.status === 401) {
    const body = await res.json().catch(() => ({}));
    if (body.error === 'session_ended') showError('session_ended');
    $('signed-in').hidden = true;
    $('signed-out').hidden = false;
    $('org').focus();
    return;
  }
  if (!res.ok) throw new Error(`/api/me answered ${res.status}`);
  const me = await res.json();
  // textContent only: claims are data, never markup.
  $('who').textContent = me.idToken.name ?? me.idToken.email ?? me.idToken.sub;
  $('org-name').textContent = me.org;
  $('expires').textContent = new Date(me.accessTokenExpiresAt).toLocaleTimeString();
  $('id-claims').textContent = JSON.stringify(me.idToken, null, 2);
  $('access-claims').textContent = JSON.stringify(me.accessToken, null, 2);
  $('userinfo').textContent = JSON.stringify(me.userinfo, null, 2);
  $('signed-out').hidden = true;
  $('signed-in').hidden = false;
}

// An error the BFF passed back from the sign-in (?error=…): show it once, then clean the address bar.
const params = new URLSearchParams(location.search);
if (params.has('error')) {
  showError(params.get('error'));
  history.replaceState(null, '', '/');
}

$('call-api').addEventListener('click', () => {
  loadMe().catch(() => showError('api_failed'));
});
loadMe().catch(() => showError('api_failed'));
