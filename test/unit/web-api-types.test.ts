/**
 * The web UI's API types are written by hand (web/src/api*.ts, "shapes as in docs/openapi.json").
 * Each interface named like a schema of docs/openapi.json (itself generated from the API's zod
 * schemas and checked by openapi.test.ts) must agree with it, and so must the interfaces its
 * fields name (`backups: BackupSummary[]` is compared with the schema of its `backups` items):
 * every field the UI declares exists, a field the UI reads as always present is required, and a
 * field the API may send as null is typed with null in the UI. The UI may declare fewer fields
 * than the API sends.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

interface JsonSchema {
  type?: string | string[];
  $ref?: string;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  nullable?: boolean;
  items?: JsonSchema;
  properties?: Record<string, JsonSchema>;
  additionalProperties?: boolean | JsonSchema;
  required?: string[];
}

const ROOT = join(import.meta.dirname, '..', '..');
const openapi = JSON.parse(readFileSync(join(ROOT, 'docs', 'openapi.json'), 'utf8')) as { components: { schemas: Record<string, JsonSchema> } };
const schemas = openapi.components.schemas;

function resolveRef(schema: JsonSchema): JsonSchema {
  return schema.$ref ? (schemas[schema.$ref.replace('#/components/schemas/', '')] ?? {}) : schema;
}

const isNullType = (s: JsonSchema): boolean => (Array.isArray(s.type) ? s.type.includes('null') : s.type === 'null');

function nullable(schema: JsonSchema): boolean {
  const s = resolveRef(schema);
  if (s.nullable === true || isNullType(s)) return true;
  return [...(s.anyOf ?? []), ...(s.oneOf ?? [])].some(nullable);
}

/** The object schema of a value that may also be null (`anyOf: [X, null]`), refs resolved. */
function objectOf(schema: JsonSchema): JsonSchema {
  const s = resolveRef(schema);
  const alternatives = [...(s.anyOf ?? []), ...(s.oneOf ?? [])].filter((a) => !(resolveRef(a).type === 'null'));
  return alternatives.length === 1 && alternatives[0] ? objectOf(alternatives[0]) : s;
}

interface WebField {
  name: string;
  optional: boolean;
  withNull: boolean;
  /** The web interface the field's type names (`X`, `X[]`, `X | null`), if any. */
  ref?: { name: string; array: boolean };
  /** The fields of an object type written in place (`{ key: string }`, `{ … }[]`, `{ … } | null`). */
  inline?: { fields: WebField[]; array: boolean };
}

/** The type without its `| null`, when one type is left. */
function nonNull(type: ts.TypeNode): ts.TypeNode | undefined {
  const parts = ts.isUnionTypeNode(type) ? type.types.filter((t) => !(ts.isLiteralTypeNode(t) && t.literal.kind === ts.SyntaxKind.NullKeyword)) : [type];
  return parts.length === 1 ? parts[0] : undefined;
}

function refOf(type: ts.TypeNode): WebField['ref'] {
  const only = nonNull(type);
  if (only && ts.isTypeReferenceNode(only) && ts.isIdentifier(only.typeName)) return { name: only.typeName.text, array: false };
  if (only && ts.isArrayTypeNode(only) && ts.isTypeReferenceNode(only.elementType) && ts.isIdentifier(only.elementType.typeName)) return { name: only.elementType.typeName.text, array: true };
  return undefined;
}

type Interfaces = Map<string, WebField[]>;

/** The fields of an interface's or object type's members. */
function fieldsOf(members: ts.NodeArray<ts.TypeElement>, source: ts.SourceFile): WebField[] {
  const fields: WebField[] = [];
  for (const member of members) {
    if (!ts.isPropertySignature(member) || !member.type) continue;
    const type = member.type;
    const withNull = ts.isUnionTypeNode(type) && type.types.some((t) => ts.isLiteralTypeNode(t) && t.literal.kind === ts.SyntaxKind.NullKeyword);
    const ref = refOf(type);
    const only = nonNull(type);
    const literal = only && ts.isArrayTypeNode(only) ? only.elementType : only;
    const inline = literal && ts.isTypeLiteralNode(literal) ? { fields: fieldsOf(literal.members, source), array: literal !== only } : undefined;
    fields.push({ name: member.name.getText(source), optional: member.questionToken !== undefined, withNull, ...(ref ? { ref } : {}), ...(inline ? { inline } : {}) });
  }
  return fields;
}

/** Every interface of a web source file, with its own fields. */
function webInterfaces(file: string): Interfaces {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const found: Interfaces = new Map();
  for (const statement of source.statements) {
    if (ts.isInterfaceDeclaration(statement)) found.set(statement.name.text, fieldsOf(statement.members, source));
  }
  return found;
}

/** What is wrong with one field next to its property schema (a response field: the UI reads it). */
function fieldProblems(at: string, field: WebField, property: JsonSchema, required: Set<string>, request: boolean): string[] {
  if (request) return field.optional && required.has(field.name) ? [`${at}: the API requires it, the UI may leave it out`] : [];
  const problems: string[] = [];
  if (!field.optional && !required.has(field.name)) problems.push(`${at}: the API may leave it out, the UI types it as always there (add ?)`);
  if (nullable(property) && !field.withNull) problems.push(`${at}: the API may send null, the UI's type has no null`);
  return problems;
}

/**
 * What is wrong with a web interface next to its OpenAPI schema (empty: it agrees), and with the
 * web interfaces its fields name (looked up in `known`). A response (`request` false): the UI
 * reads it. A request body (`request` true): the UI sends it, so every field the API requires
 * must be one the UI always sends.
 */
function disagreements(name: string, fields: WebField[], schema: JsonSchema, request = false, known: Interfaces = new Map()): string[] {
  const problems: string[] = [];
  const object = objectOf(schema);
  const properties = object.properties ?? {};
  const required = new Set(object.required ?? []);
  for (const field of fields) {
    const property = properties[field.name];
    const at = `${name}.${field.name}`;
    if (!property) {
      // An open object (additionalProperties, e.g. a manifest's source: each source type adds its own) may have it.
      const open = object.additionalProperties !== undefined && object.additionalProperties !== false;
      if (!(open && field.optional)) problems.push(`${at}: not in the API's ${name}`);
      continue;
    }
    problems.push(...fieldProblems(at, field, property, required, request));
    const named = field.ref ? known.get(field.ref.name) : undefined;
    const nested = named ? { fields: named, array: field.ref?.array ?? false } : field.inline;
    if (nested) {
      const value = nested.array ? objectOf(property).items : property;
      problems.push(...(value ? disagreements(`${at}${nested.array ? '[]' : ''}`, nested.fields, value, request, known) : [`${at}: the API's is not a list`]));
    }
  }
  if (request) for (const key of required) if (!fields.some((f) => f.name === key)) problems.push(`${name}.${key}: the API requires it, the UI's type does not have it`);
  return problems;
}

/**
 * Web interfaces compared with an API schema of another name, or with a part of the schema of
 * their name (the API wraps it): the answers of the routes the UI reads them from.
 */
const ALIASES: Record<string, () => JsonSchema | undefined> = {
  RestorePlan: () => schemas.RestorePlan?.properties?.plan, // POST /v1/restores with dry_run
  FullQueueStats: () => schemas.QueueStats, // GET /v1/queue/stats
  TargetInfo: () => schemas.Target, // GET /v1/targets, /v1/targets/{name}
  ProblemList: () => schemas.MandateList, // GET /v1/mandates
  BackupDetail: () => schemas.BackupManifests, // GET /v1/backups/{name}
};

/** The API schema a web interface is compared with, and whether it is a request body. */
function apiSchema(name: string): { schema: JsonSchema; request: boolean } | undefined {
  const alias = ALIASES[name];
  const schema = alias ? alias() : schemas[name];
  if (alias && !schema) throw new Error(`the API schema compared with the web's ${name} is gone from docs/openapi.json`);
  return schema ? { schema, request: name.endsWith('Request') } : undefined;
}

const WEB_SRC = join(ROOT, 'web', 'src');
const files = readdirSync(WEB_SRC).filter((f) => /^api.*\.ts$/.test(f) && !f.endsWith('.test.ts'));
/** The interfaces of every file; a file's own come first (BackupPage and JobsPage have a version per screen). */
const everywhere: Interfaces = new Map(files.flatMap((f) => [...webInterfaces(join(WEB_SRC, f))]));

describe("the web UI's API types next to docs/openapi.json", () => {
  it('finds interfaces to compare (the check is not empty)', () => {
    const named = files.flatMap((f) => [...webInterfaces(join(WEB_SRC, f)).keys()].filter((n) => n in schemas));
    expect(named.length).toBeGreaterThan(15);
  });

  it.each(files)('web/src/%s agrees with the API schemas of the same name, and with the parts its fields name', (file) => {
    const own = webInterfaces(join(WEB_SRC, file));
    const known: Interfaces = new Map([...everywhere, ...own]);
    const problems: string[] = [];
    for (const [name, fields] of own) {
      const api = apiSchema(name);
      if (api) problems.push(...disagreements(name, fields, api.schema, api.request, known));
    }
    expect(problems).toEqual([]);
  });

  it('reports, in a request body, a field the API requires that the UI may leave out', () => {
    const schema: JsonSchema = { type: 'object', properties: { a: { type: 'string' }, b: { type: 'string' } }, required: ['a', 'b'] };
    expect(disagreements('R', [{ name: 'a', optional: true, withNull: false }], schema, true)).toEqual([
      'R.a: the API requires it, the UI may leave it out',
      "R.b: the API requires it, the UI's type does not have it",
    ]);
  });

  it('reports a renamed field, a field typed as always there, and a missing null, also in the parts a field names', () => {
    const item: JsonSchema = { type: 'object', properties: { x: { type: ['string', 'null'] } }, required: ['x'] };
    const schema: JsonSchema = {
      type: 'object',
      properties: { a: { type: 'string' }, b: { type: ['string', 'null'] }, c: { type: 'string' }, list: { type: 'array', items: item } },
      required: ['a', 'b', 'list'],
    };
    const fields: WebField[] = [
      { name: 'a', optional: false, withNull: false },
      { name: 'b', optional: false, withNull: false },
      { name: 'c', optional: false, withNull: false },
      { name: 'd', optional: true, withNull: false },
      { name: 'list', optional: false, withNull: false, ref: { name: 'Item', array: true } },
    ];
    const known: Interfaces = new Map([['Item', [{ name: 'x', optional: false, withNull: false }, { name: 'y', optional: true, withNull: false }]]]);
    expect(disagreements('O', [{ name: 'extra', optional: true, withNull: false }], { type: 'object', properties: {}, additionalProperties: {} })).toEqual([]);
    expect(disagreements('O', [{ name: 'extra', optional: false, withNull: false }], { type: 'object', properties: {}, additionalProperties: {} })).toEqual(["O.extra: not in the API's O"]);
    expect(disagreements('X', fields, schema, false, known)).toEqual([
      "X.b: the API may send null, the UI's type has no null",
      'X.c: the API may leave it out, the UI types it as always there (add ?)',
      "X.d: not in the API's X",
      "X.list[].x: the API may send null, the UI's type has no null",
      "X.list[].y: not in the API's X.list[]",
    ]);
  });
});
