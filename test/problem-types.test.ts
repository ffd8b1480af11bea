/** docs/problem-types.md lists exactly the catalogue of src/common/problem-types.ts, in its order. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PROBLEM_TYPES, PROBLEM_TYPE_PREFIX } from '../src/common/problem-types.js';
import { ProblemError } from '../src/common/errors.js';

describe('problem type catalogue', () => {
  it('the document lists every catalogued type with its status and title, and nothing else', () => {
    const doc = readFileSync(new URL('../docs/problem-types.md', import.meta.url), 'utf8');
    const rows = [...doc.matchAll(/^\| `([^`]+)` \| (\d{3}) \| (.+) \|$/gm)].map((m) => [m[1], Number(m[2]), m[3]]);
    const expected = Object.entries(PROBLEM_TYPES).map(([slug, p]) => [`${PROBLEM_TYPE_PREFIX}${slug}`, p.status, p.title]);
    expect(rows).toEqual(expected);
  });

  it('a catalogued problem takes its status and title from the catalogue unless the occurrence overrides them', () => {
    const p = new ProblemError({ type: 'stale-etag', detail: 'The binding changed.' });
    expect([p.type, p.status, p.title, p.detail]).toEqual([
      'urn:auth-service:problem:stale-etag',
      412,
      'Precondition failed',
      'The binding changed.',
    ]);
    const q = new ProblemError({ type: 'idp-misconfigured', status: 503 });
    expect([q.status, q.title, q.message]).toEqual([503, 'Identity provider misconfigured', 'Identity provider misconfigured']);
    const blank = new ProblemError({ status: 404, title: 'Not found' });
    expect([blank.type, blank.extensions]).toEqual(['about:blank', {}]);
  });
});
