/**
 * The SCIM filter module's public surface: parse a filter (RFC 7644 §3.4.2.2) or a PATCH path,
 * describe a resource's SQL layout, compile a filter to a parametrised WHERE fragment. The parts:
 * scim-filter-ast.ts (syntax tree, errors), scim-filter-parser.ts (tokenizer, parser),
 * scim-sql-schema.ts (attribute → SQL mapping), scim-filter-sql.ts (compiler).
 */
export type {
  ScimFilterErrorType,
  CompareOp,
  CompValue,
  AttrPath,
  CompareNode,
  PresentNode,
  LogicalNode,
  NotNode,
  ValuePathNode,
  FilterAst,
  ParseLimits,
} from './scim-filter-ast.js';
export { ScimFilterError, COMPARE_OPS, formatAttrPath } from './scim-filter-ast.js';
export type { PatchPathSyntax } from './scim-filter-parser.js';
export { parseScimFilter, parsePatchPathSyntax } from './scim-filter-parser.js';
export type {
  ScimAttributeType,
  ScimValueType,
  ScimColumnMapping,
  ScimJsonArrayMapping,
  ScimTableMapping,
  ScimAttributeMapping,
  ScimSqlSchema,
} from './scim-sql-schema.js';
export { defineScimSqlSchema } from './scim-sql-schema.js';
export type { CompileOptions, CompiledFilter } from './scim-filter-sql.js';
export { compileScimFilter } from './scim-filter-sql.js';
