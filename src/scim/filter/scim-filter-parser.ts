/**
 * SCIM 2.0 filter parsing (RFC 7644 §3.4.2.2): tokenizer, attribute paths, parser.
 *
 * The parser is a small recursive-descent parser over a real tokenizer that follows the
 * RFC 7644 ABNF:
 *
 *   FILTER    = attrExp / logExp / valuePath / *1"not" "(" valFilter ")"
 *   valuePath = attrPath "[" valFilter "]"
 *   valFilter = attrExp / logExp / *1"not" "(" valFilter ")"
 *   attrExp   = (attrPath SP "pr") / (attrPath SP compareOp SP compValue)
 *   logExp    = FILTER SP ("and" / "or") SP FILTER
 *   compValue = false / null / true / number / string   ; JSON (RFC 7159)
 *   attrPath  = [URI ":"] ATTRNAME *1subAttr
 *   ATTRNAME  = ALPHA *(nameChar)                       ; plus "$ref" (RFC 7643 §2.1)
 *   subAttr   = "." ATTRNAME
 *
 * Precedence: not > and > or; parentheses group. Keywords, operators and attribute names
 * are case-insensitive. Extensions over the strict ABNF (common in the wild): any run of
 * whitespace separates tokens; `true`/`false`/`null` are accepted in any case; a value
 * path may be followed by a sub-attribute comparison (`emails[type eq "work"].value co
 * "@x.com"`), which is evaluated correlated (same element), i.e. as
 * `emails[type eq "work" and value co "@x.com"]`.
 *
 * Nothing here touches the database: `compileScimFilter` only produces SQL text whose
 * identifiers come from the trusted {@link ScimSqlSchema} and whose values are all bound
 * parameters.
 */

import {
  ScimFilterErrorType,
  ScimFilterError,
  CompareOp,
  CompValue,
  AttrPath,
  FilterAst,
  COMPARE_OPS,
  ParseLimits,
  DEFAULT_LIMITS,
  formatAttrPath,
} from './scim-filter-ast.js';

// ---------------------------------------------------------------------------------------
// Tokenizer
// ---------------------------------------------------------------------------------------

type TokenType = 'word' | 'string' | 'number' | 'lparen' | 'rparen' | 'lbracket' | 'rbracket' | 'dot' | 'eof';

interface Token {
  readonly type: TokenType;
  /** Raw source text of the token. */
  readonly text: string;
  readonly pos: number;
  /** Decoded value for string and number tokens. */
  readonly value?: string | number;
}

const WORD_START = /[A-Za-z$]/;
const WORD_CHAR = /[A-Za-z0-9_.:$+-]/;
const NUMBER_RE = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const WHITESPACE = /[ \t\r\n]/;

function describe(t: Token): string {
  return t.type === 'eof' ? 'end of input' : `'${t.text}'`;
}

function tokenize(input: string, scimType: ScimFilterErrorType): Token[] {
  const tokens: Token[] = [];
  const fail = (msg: string, pos: number): never => {
    throw new ScimFilterError(scimType, `${msg} at position ${pos}`, pos);
  };
  let i = 0;
  while (i < input.length) {
    const c = input[i]!;
    if (WHITESPACE.test(c)) {
      i++;
      continue;
    }
    const single: Partial<Record<string, TokenType>> = {
      '(': 'lparen',
      ')': 'rparen',
      '[': 'lbracket',
      ']': 'rbracket',
      '.': 'dot',
    };
    const st = single[c];
    if (st) {
      tokens.push({ type: st, text: c, pos: i });
      i++;
      continue;
    }
    if (c === '"') {
      const start = i;
      i++;
      for (;;) {
        if (i >= input.length) fail('Unterminated string literal', start);
        const ch = input.charCodeAt(i);
        if (ch === 0x22) break;
        if (ch < 0x20) fail('Control character in string literal (must be escaped)', i);
        if (ch === 0x5c) {
          const e = input[i + 1];
          if (e === undefined) fail('Unterminated string literal', start);
          if (e === 'u') {
            if (!/^[0-9A-Fa-f]{4}$/.test(input.slice(i + 2, i + 6))) fail('Invalid \\u escape in string literal', i);
            i += 6;
          } else if (e !== undefined && '"\\/bfnrt'.includes(e)) {
            i += 2;
          } else {
            fail(`Invalid escape '\\${e}' in string literal (a backslash is written as \\\\)`, i);
          }
          continue;
        }
        i++;
      }
      const raw = input.slice(start, i + 1);
      tokens.push({ type: 'string', text: raw, pos: start, value: JSON.parse(raw) as string });
      i++;
      continue;
    }
    if (c === '-' || (c >= '0' && c <= '9')) {
      NUMBER_RE.lastIndex = i;
      const m = NUMBER_RE.exec(input);
      const raw = m?.[0] ?? '';
      const next = input[i + raw.length];
      if (!raw || raw === '-' || (next !== undefined && (WORD_CHAR.test(next) || next === '"'))) {
        let end = i + 1;
        while (end < input.length && (WORD_CHAR.test(input[end]!) || input[end] === '"')) end++;
        fail(`Invalid number '${input.slice(i, end)}'`, i);
      }
      const value = Number(raw);
      if (!Number.isFinite(value)) fail(`Number '${raw}' is out of range`, i);
      tokens.push({ type: 'number', text: raw, pos: i, value });
      i += raw.length;
      continue;
    }
    if (WORD_START.test(c)) {
      const start = i;
      while (i < input.length && WORD_CHAR.test(input[i]!)) i++;
      tokens.push({ type: 'word', text: input.slice(start, i), pos: start });
      continue;
    }
    fail(`Unexpected character '${c}'`, i);
  }
  tokens.push({ type: 'eof', text: '', pos: input.length });
  return tokens;
}

// ---------------------------------------------------------------------------------------
// Attribute paths
// ---------------------------------------------------------------------------------------

const ATTRNAME = '(?:\\$ref|[A-Za-z][A-Za-z0-9_-]*)';
const ATTR_RE = new RegExp(`^(${ATTRNAME})(?:\\.(${ATTRNAME}))?$`);
export const ATTRNAME_RE = new RegExp(`^${ATTRNAME}$`);
export const URI_RE = /^[A-Za-z][A-Za-z0-9+.-]*(?::[A-Za-z0-9_.+$-]+)+$/;

export function parseAttrPathText(text: string, pos: number, scimType: ScimFilterErrorType): AttrPath {
  const colon = text.lastIndexOf(':');
  const uri = colon >= 0 ? text.slice(0, colon) : undefined;
  const rest = colon >= 0 ? text.slice(colon + 1) : text;
  if (uri !== undefined && !URI_RE.test(uri)) {
    throw new ScimFilterError(scimType, `Invalid schema URI '${uri}' in attribute path '${text}' at position ${pos}`, pos);
  }
  const m = ATTR_RE.exec(rest);
  if (!m) {
    throw new ScimFilterError(
      scimType,
      `Invalid attribute path '${text}' at position ${pos} (expected [schemaUrn:]attribute[.subAttribute])`,
      pos,
    );
  }
  return { ...(uri !== undefined ? { uri } : {}), name: m[1]!, ...(m[2] !== undefined ? { subAttr: m[2] } : {}) };
}

// ---------------------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------------------

/** Structured PATCH path (RFC 7644 §3.5.2: `PATH = attrPath / valuePath [subAttr]`). */
export interface PatchPathSyntax {
  readonly attr: AttrPath;
  readonly valueFilter?: FilterAst;
  /** Sub-attribute after `]` (`emails[type eq "work"].value`). */
  readonly subAttr?: string;
}

class Parser {
  private i = 0;
  private depth = 0;
  private terms = 0;
  private readonly tokens: Token[];
  private readonly limits: Required<ParseLimits>;

  constructor(
    input: string,
    /** scimType for structural errors; errors inside a value filter are always invalidFilter. */
    scimType: ScimFilterErrorType,
    limits: ParseLimits,
  ) {
    this.limits = { ...DEFAULT_LIMITS, ...limits };
    if (typeof input !== 'string' || input.trim() === '') {
      throw new ScimFilterError(scimType, scimType === 'invalidPath' ? 'Path is empty' : 'Filter is empty');
    }
    if (input.length > this.limits.maxLength) {
      throw new ScimFilterError(
        scimType,
        `${scimType === 'invalidPath' ? 'Path' : 'Filter'} is too long (${input.length} characters, maximum ${this.limits.maxLength})`,
      );
    }
    this.tokens = tokenize(input, scimType);
  }

  private peek(offset = 0): Token {
    return this.tokens[Math.min(this.i + offset, this.tokens.length - 1)]!;
  }

  private next(): Token {
    const t = this.peek();
    if (t.type !== 'eof') this.i++;
    return t;
  }

  private fail(msg: string, t: Token, scimType: ScimFilterErrorType = 'invalidFilter'): never {
    throw new ScimFilterError(scimType, `${msg} at position ${t.pos}`, t.pos);
  }

  private isKeyword(t: Token, kw: string): boolean {
    return t.type === 'word' && t.text.toLowerCase() === kw;
  }

  private expect(type: TokenType, what: string, scimType: ScimFilterErrorType = 'invalidFilter'): Token {
    const t = this.peek();
    if (t.type !== type) this.fail(`Expected ${what} but found ${describe(t)}`, t, scimType);
    return this.next();
  }

  private enter(t: Token): void {
    if (++this.depth > this.limits.maxDepth) {
      this.fail(`Filter is nested too deeply (maximum depth ${this.limits.maxDepth})`, t);
    }
  }

  parseFilter(): FilterAst {
    const ast = this.parseOr(false);
    const t = this.peek();
    if (t.type !== 'eof') {
      if (t.type === 'rparen') this.fail(`Unbalanced ')'`, t);
      if (t.type === 'rbracket') this.fail(`Unbalanced ']'`, t);
      this.fail(`Expected 'and', 'or' or end of filter but found ${describe(t)}`, t);
    }
    return ast;
  }

  parsePath(): PatchPathSyntax {
    const first = this.peek();
    if (first.type !== 'word') this.fail(`Expected an attribute path but found ${describe(first)}`, first, 'invalidPath');
    this.next();
    const attr = parseAttrPathText(first.text, first.pos, 'invalidPath');
    let valueFilter: FilterAst | undefined;
    let subAttr: string | undefined;
    if (this.peek().type === 'lbracket') {
      const lb = this.next();
      if (attr.subAttr !== undefined) {
        this.fail(`A value filter cannot follow the sub-attribute '${formatAttrPath(attr)}'`, lb, 'invalidPath');
      }
      this.enter(lb);
      valueFilter = this.parseOr(true);
      this.depth--;
      this.expect('rbracket', `']'`);
      if (this.peek().type === 'dot') subAttr = this.parseSubAttrAfterBracket('invalidPath');
    }
    const t = this.peek();
    if (t.type !== 'eof') this.fail(`Unexpected ${describe(t)} in path`, t, 'invalidPath');
    return { attr, ...(valueFilter ? { valueFilter } : {}), ...(subAttr !== undefined ? { subAttr } : {}) };
  }

  private parseSubAttrAfterBracket(scimType: ScimFilterErrorType): string {
    const dot = this.next();
    const prev = this.tokens[this.i - 2]!;
    const w = this.peek();
    if (prev.pos + 1 !== dot.pos || w.type !== 'word' || w.pos !== dot.pos + 1 || !ATTRNAME_RE.test(w.text)) {
      this.fail(`Expected a sub-attribute name immediately after '].'`, dot, scimType);
    }
    this.next();
    return w.text;
  }

  private parseOr(inValuePath: boolean): FilterAst {
    const filters = [this.parseAnd(inValuePath)];
    while (this.isKeyword(this.peek(), 'or')) {
      this.next();
      filters.push(this.parseAnd(inValuePath));
    }
    return filters.length === 1 ? filters[0]! : { op: 'or', filters };
  }

  private parseAnd(inValuePath: boolean): FilterAst {
    const filters = [this.parseUnary(inValuePath)];
    while (this.isKeyword(this.peek(), 'and')) {
      this.next();
      filters.push(this.parseUnary(inValuePath));
    }
    return filters.length === 1 ? filters[0]! : { op: 'and', filters };
  }

  private parseUnary(inValuePath: boolean): FilterAst {
    const t = this.peek();
    if (t.type === 'lparen') {
      this.next();
      this.enter(t);
      const inner = this.parseOr(inValuePath);
      this.depth--;
      this.expect('rparen', `')'`);
      return inner;
    }
    if (this.isKeyword(t, 'not')) {
      const n = this.peek(1);
      if (n.type === 'lparen') {
        this.next();
        this.next();
        this.enter(t);
        const inner = this.parseOr(inValuePath);
        this.depth--;
        this.expect('rparen', `')'`);
        return { op: 'not', filter: inner };
      }
      const isOperator =
        n.type === 'lbracket' || (n.type === 'word' && (COMPARE_OPS.has(n.text.toLowerCase()) || n.text.toLowerCase() === 'pr'));
      if (!isOperator) this.fail(`'not' must be followed by a parenthesised filter: not (...)`, t);
    }
    if (t.type === 'word') return this.parseAttrExp(inValuePath);
    if (t.type === 'eof') this.fail('Unexpected end of filter, expected an attribute expression', t);
    this.fail(`Expected an attribute path, '(' or 'not' but found ${describe(t)}`, t);
  }

  private parseAttrExp(inValuePath: boolean): FilterAst {
    const pathTok = this.next();
    const attr = parseAttrPathText(pathTok.text, pathTok.pos, 'invalidFilter');
    if (this.peek().type === 'lbracket') {
      const lb = this.next();
      if (inValuePath) this.fail('Value paths cannot be nested', lb);
      if (attr.subAttr !== undefined) {
        this.fail(`A value filter cannot follow the sub-attribute '${formatAttrPath(attr)}'`, lb);
      }
      this.enter(lb);
      const inner = this.parseOr(true);
      this.depth--;
      this.expect('rbracket', `']'`);
      if (this.peek().type === 'dot') {
        // emails[type eq "work"].value co "x": correlated sub-attribute condition.
        const sub = this.parseSubAttrAfterBracket('invalidFilter');
        const subExp = this.parseOperatorAndValue({ name: sub }, pathTok);
        const filters = inner.op === 'and' ? [...inner.filters, subExp] : [inner, subExp];
        return { op: 'valuePath', attr, filter: { op: 'and', filters } };
      }
      return { op: 'valuePath', attr, filter: inner };
    }
    return this.parseOperatorAndValue(attr, pathTok);
  }

  private parseOperatorAndValue(attr: AttrPath, pathTok: Token): FilterAst {
    if (++this.terms > this.limits.maxTerms) {
      this.fail(`Filter has too many expressions (maximum ${this.limits.maxTerms})`, pathTok);
    }
    const opTok = this.peek();
    const op = opTok.type === 'word' ? opTok.text.toLowerCase() : '';
    if (op === 'pr') {
      this.next();
      return { op: 'pr', attr };
    }
    if (!COMPARE_OPS.has(op)) {
      this.fail(
        `Expected an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr) after '${formatAttrPath(attr)}' but found ${describe(opTok)}`,
        opTok,
      );
    }
    this.next();
    const v = this.peek();
    let value: CompValue;
    if (v.type === 'string' || v.type === 'number') {
      value = v.value!;
    } else if (v.type === 'word' && ['true', 'false', 'null'].includes(v.text.toLowerCase())) {
      const w = v.text.toLowerCase();
      value = w === 'null' ? null : w === 'true';
    } else if (v.type === 'eof') {
      this.fail(`Missing value after '${formatAttrPath(attr)} ${op}'`, v);
    } else {
      this.fail(`Expected a value (a "double-quoted" string, a number, true, false or null) after '${op}' but found ${describe(v)}`, v);
    }
    this.next();
    return { op: op as CompareOp, attr, value };
  }
}

/** Parse a SCIM filter expression; throws {@link ScimFilterError} (`invalidFilter`). */
export function parseScimFilter(text: string, limits: ParseLimits = {}): FilterAst {
  return new Parser(text, 'invalidFilter', limits).parseFilter();
}

/**
 * @internal Syntax of a PATCH path; use `parseScimPath` from `./scim-path.js`.
 * Structural errors are `invalidPath`, errors inside `[...]` are `invalidFilter` (RFC 7644 §3.12).
 */
export function parsePatchPathSyntax(text: string, limits: ParseLimits = {}): PatchPathSyntax {
  return new Parser(text, 'invalidPath', { maxLength: 1024, ...limits }).parsePath();
}
