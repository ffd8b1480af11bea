/**
 * Runs the example BFF on its own, against an auth-service that is already running:
 *
 *   AUTH_SERVICE_URL=http://localhost:3000 BFF_CLIENT_ID=demo-bff BFF_CLIENT_SECRET=… \
 *   BFF_PUBLIC_URL=http://localhost:3001 \
 *   node --import @swc-node/register/esm-register examples/bff-spa/main.ts
 *
 * (`npm run demo` starts the service, this BFF and two demo tenants in one process instead.)
 */
import { createBff } from './bff.js';

const need = (name: string): string => {
  const value = process.env[name];
  if (!value) {
    process.stderr.write(`bff: ${name} is required (see examples/bff-spa/README.md)\n`);
    process.exit(2);
  }
  return value;
};

const publicUrl = process.env['BFF_PUBLIC_URL'] ?? 'http://localhost:3001';
const port = Number(new URL(publicUrl).port || 80);
const app = await createBff({
  issuer: process.env['AUTH_SERVICE_URL'] ?? 'http://localhost:3000',
  clientId: need('BFF_CLIENT_ID'),
  clientSecret: need('BFF_CLIENT_SECRET'),
  publicUrl,
});
const server = app.listen(port, '127.0.0.1', () => process.stdout.write(`bff: open ${publicUrl}/\n`));
const stop = () => server.close(() => process.exit(0));
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
