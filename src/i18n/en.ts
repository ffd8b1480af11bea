/**
 * The English catalogue: every text of the hosted pages (and the account mails), plain text.
 * `{name}` is a value put in when the text is used (escaped there, like the whole text). The other
 * catalogues are typed `Messages`, so a key missing from one, or one English does not have, fails
 * `tsc`. English is also what the pages said before there were catalogues: keep it word for word.
 */
const catalogue = {
  // The page frame and the error page (common/html.ts, common/error.filter.ts)
  'error.title.signIn': 'Sign-in problem',
  'error.title.signOut': 'Sign-out problem',
  'error.title.account': 'Account problem',
  'error.returnLink': 'Return to the application',
  'error.returnSentence': '{link} and try again.',
  'error.startAgain': 'Go back to the application you came from and start again from there.',
  'error.status': 'Error {status}.',
  'error.generic': 'Something went wrong. Please try again.',
  'brand.support': 'Need help? Contact {contact}.',
  'brand.legal': 'Legal',

  // Errors the pages show, by problem type (used when the language is not English; English keeps the detail)
  'problem.login-expired': 'This sign-in link is invalid or has expired. Start again from the application.',
  'problem.link-invalid': 'This link is invalid, has expired or was already used. Ask for a new one.',
  'problem.csrf': 'The sign-in form has expired. Reload the page and try again.',
  'problem.login-step': 'This sign-in step is not expected now. Start again from the application.',
  'problem.rate-limited': 'Too many attempts. Try again in {seconds} s.',
  'problem.invalid-password': 'This password cannot be used. Choose another one.',
  'problem.dependency-unavailable': 'A service needed for the sign-in cannot be reached. Try again in a moment.',
  'problem.saml-response-missing': 'The identity provider sent no sign-in response. Start again from the application.',
  'problem.saml-response-rejected': 'The sign-in response of the identity provider was refused. Start again from the application.',
  'problem.saml-idp-initiated-disabled':
    'This organisation does not allow signing in from the identity provider. Start from the application.',
  'problem.malformed-body': 'The form could not be read. Reload the page and try again.',
  'problem.body-too-large': 'The form is too large to be sent.',
  'problem.invalid-characters': 'The form contains characters that cannot be accepted.',

  // The sign-in form (login/login.controller.ts)
  'signIn.title': 'Sign in',
  'signIn.to': 'to {tenant}',
  'signIn.username': 'Email or username',
  'signIn.password': 'Password',
  'signIn.submit': 'Sign in',
  'signIn.forgot': 'Forgot your password?',
  'signIn.passkey': 'Sign in with a passkey',
  'signIn.invalidCredentials': 'Invalid username or password.',

  // Passkeys (the texts the passkey script shows, and the errors of a ceremony)
  'passkey.cancelled': 'The passkey request was cancelled or timed out.',
  'passkey.failed': 'This browser could not use a passkey here.',
  'passkey.notVerified': 'That passkey could not be verified. Try again, or sign in another way.',
  'passkey.notRegistered': 'That passkey could not be registered. Try again.',
  'passkey.limit': 'An account can have at most {max} passkeys. Remove one first.',
  'passkey.duplicate': 'This passkey is already registered.',

  // Two-step verification
  'mfa.title': 'Two-step verification',
  'mfa.usePasskey': 'Use your passkey',
  'mfa.enterCode': 'Enter the 6-digit code from your authenticator app, or one of your recovery codes.',
  'mfa.code': 'Code',
  'mfa.verify': 'Verify',
  'mfa.cannotContinue': 'This sign-in cannot continue. Start again from the application.',
  'mfa.passkeyNeedsScript': 'Using a passkey needs JavaScript. Turn it on, or ask your administrator to reset your sign-in methods.',
  'mfa.invalidCode': 'That code is not valid. Enter the current code from your authenticator app, or an unused recovery code.',
  'mfa.skip': 'Skip',
  'mfa.offerHeading': 'Protect your account',
  'mfa.offerLead': 'Two-step verification asks for a code from an authenticator app after your password.',
  'mfa.offerStart': 'Set up two-step verification',
  'mfa.enrolHeading': 'Set up two-step verification',
  'mfa.enrolScan': 'Scan this code with your authenticator app:',
  'mfa.enrolQrAlt': 'QR code of your two-step verification secret',
  'mfa.enrolManual': 'Or enter this key by hand: {key}',
  'mfa.enrolCode': 'Code from the app',
  'mfa.enrolConfirm': 'Confirm',
  'mfa.recoveryHeading': 'Your recovery codes',
  'mfa.recoveryLead': 'Each code signs you in once if you lose your authenticator app. Keep them somewhere safe: they are shown only now.',
  'mfa.recoveryContinue': 'Continue',
  'passkeyOffer.title': 'Add a passkey',
  'passkeyOffer.heading': 'Sign in faster with a passkey',
  'passkeyOffer.lead':
    'A passkey signs you in with your fingerprint, face or device PIN instead of a password. It stays on your device or in your password manager.',
  'passkeyOffer.add': 'Add a passkey',
  'passkeyOffer.name': 'Name for this passkey (optional)',
  'passkeyOffer.notNow': 'Not now',

  // The end of an IT admin's test login
  'testLogin.okTitle': 'Test login succeeded',
  'testLogin.okText': 'The identity provider is configured correctly. Ops can now preview the mapped claims and activate the binding.',
  'testLogin.failTitle': 'Test login failed',
  'testLogin.failText': 'The identity provider answered: {error}.',
  'testLogin.failHint': 'Check the configuration on both sides and start a new test login.',
  'testLogin.unknownError': 'unknown error',

  // Signed out (oauth/oauth.controller.ts)
  'signedOut.title': 'Signed out',
  'signedOut.text': 'You are signed out. You can close this window.',

  // The hosted organisation page (oauth/oauth.controller.ts)
  'organization.title': 'Your organisation',
  'organization.heading': 'Sign in',
  'organization.text': 'Enter the sign-in name of your organisation. Your administrator can tell you what it is.',
  'organization.label': 'Organisation',
  'organization.submit': 'Continue',
  'organization.unknown': 'We could not find that organisation. Check the name and try again.',

  // The account pages (account/account.controller.ts)
  'account.setTitle': 'Set your password',
  'account.newTitle': 'Choose a new password',
  'account.for': 'for {tenant}',
  'account.forAccount': 'for {tenant}, account {username}',
  'account.newPassword': 'New password',
  'account.newPasswordAgain': 'New password, again',
  'account.setButton': 'Set password',
  'account.changeButton': 'Change password',
  'account.mismatch': 'The two passwords are not the same.',
  'account.passwordSetTitle': 'Password set',
  'account.passwordSetHeading': 'Your password is set',
  'account.passwordSetText': 'You can now sign in to {tenant} from your application.',
  'account.passwordSetTextAs': 'You can now sign in to {tenant} as {username} from your application.',
  'account.verifyTitle': 'Verify your email address',
  'account.verifyText': 'Confirm that {email} is yours, for {tenant}.',
  'account.verifyButton': 'Confirm my email address',
  'account.verifiedTitle': 'Email verified',
  'account.verifiedHeading': 'Email address verified',
  'account.verifiedText': '{email} is verified. You can close this window.',
  'account.forgotTitle': 'Forgot your password?',
  'account.forgotLead': 'for {tenant}. We will email you a link to choose a new one.',
  'account.forgotEmpty': 'Enter your email address or username.',
  'account.sendLink': 'Send the link',
  'account.checkEmailTitle': 'Check your email',
  'account.checkEmailText':
    'If an account of {tenant} matches what you typed and has an email address, we have sent it a link to choose a new password. The link works once, for a short time.',
  'account.backToSignIn': 'Back to sign in',

  // The password policy (identity/native/password-policy.ts)
  'password.length': 'Passwords are {min}–{max} characters.',
  'password.notUsername': 'The password must not be the username or the email address.',
  'password.reused': 'Choose a password other than the current one.',
  'password.weak0': 'This password is very easy to guess.',
  'password.weak1': 'This password is easy to guess.',
  'password.weak2': 'This password is fairly easy to guess.',
  'password.weak3': 'This password is hard to guess.',
  'password.weak4': 'This password is very hard to guess.',
  'password.advice': 'Use a longer passphrase of several unrelated words.',
  'password.warning.common': 'It is one of the most common passwords.',
  'password.warning.similarToCommon': 'It is close to a common password.',
  'password.warning.userInputs': 'It contains your own name, username or address.',
  'password.warning.straightRow': 'It is a row of keys on the keyboard.',
  'password.warning.keyPattern': 'It is a keyboard pattern.',
  'password.warning.simpleRepeat': 'It repeats characters.',
  'password.warning.extendedRepeat': 'It repeats a pattern.',
  'password.warning.sequences': 'It is a sequence such as abc or 123.',
  'password.warning.recentYears': 'It contains a recent year.',
  'password.warning.dates': 'It contains a date.',
  'password.warning.wordByItself': 'A single word is easy to guess.',
  'password.warning.namesByThemselves': 'A name on its own is easy to guess.',
  'password.warning.commonNames': 'Common names are easy to guess.',

  // The account mails (mail/templates.ts), in the tenant's default language
  'mail.expiry': 'The link works for {duration}.',
  'mail.actionLine': '{action}:',
  'mail.copyLink': 'If the button does not work, copy this address into your browser:',
  'mail.invitationSubject': 'You are invited to {tenant}',
  'mail.invitationLead': 'You have been invited to join {tenant}.',
  'mail.invitationAction': 'Accept the invitation',
  'mail.invitationClosing': 'If you did not expect this invitation, ignore this message.',
  'mail.resetSubject': 'Reset your {tenant} password',
  'mail.resetLead': 'Someone asked to reset the password of your {tenant} account.',
  'mail.resetAction': 'Choose a new password',
  'mail.resetClosing': 'If it was not you, ignore this message: your password stays as it is.',
  'mail.verifySubject': 'Confirm your e-mail address for {tenant}',
  'mail.verifyLead': 'Please confirm that this is your e-mail address for {tenant}.',
  'mail.verifyAction': 'Confirm the address',
  'mail.verifyClosing': 'If you did not sign up, ignore this message.',
} satisfies Record<string, string>;

export type MessageKey = keyof typeof catalogue;
/** A catalogue: one plain text for every key of the English one, no more, no fewer. */
export type Messages = Record<MessageKey, string>;

export const en: Messages = catalogue;
