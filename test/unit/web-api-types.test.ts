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
  /**
   * The object the field's type describes, when it is one: web interfaces it names and object
   * types written in place, together (`X`, `X[]`, `X | null`, `{ key: string }`, `X & { … }`).
   */
  shape?: Shape;
}

interface Shape {
  refs: string[];
  fields: WebField[];
  array: boolean;
}

/** A web interface: its own fields and the interfaces it extends. */
interface WebInterface {
  fields: WebField[];
  bases: string[];
}

type Interfaces = Map<string, WebInterface>;

/** The type without its `| null`, when one type is left. */
function nonNull(type: ts.TypeNode): ts.TypeNode | undefined {
  const parts = ts.isUnionTypeNode(type) ? type.types.filter((t) => !(ts.isLiteralTypeNode(t) && t.literal.kind === ts.SyntaxKind.NullKeyword)) : [type];
  return parts.length === 1 ? parts[0] : undefined;
}

function shapeOf(type: ts.TypeNode, source: ts.SourceFile): Shape | undefined {
  const only = nonNull(type);
  if (!only) return undefined;
  const element = ts.isArrayTypeNode(only) ? only.elementType : only;
  const parts = ts.isIntersectionTypeNode(element) ? [...element.types] : [element];
  const shape: Shape = { refs: [], fields: [], array: element !== only };
  for (const part of parts) {
    if (ts.isTypeReferenceNode(part) && ts.isIdentifier(part.typeName)) shape.refs.push(part.typeName.text);
    else if (ts.isTypeLiteralNode(part)) shape.fields.push(...fieldsOf(part.members, source));
    else return undefined;
  }
  return shape;
}

/** The fields of an interface's or object type's members. */
function fieldsOf(members: ts.NodeArray<ts.TypeElement>, source: ts.SourceFile): WebField[] {
  const fields: WebField[] = [];
  for (const member of members) {
    if (!ts.isPropertySignature(member) || !member.type) continue;
    const type = member.type;
    const withNull = ts.isUnionTypeNode(type) && type.types.some((t) => ts.isLiteralTypeNode(t) && t.literal.kind === ts.SyntaxKind.NullKeyword);
    const shape = shapeOf(type, source);
    fields.push({ name: member.name.getText(source), optional: member.questionToken !== undefined, withNull, ...(shape ? { shape } : {}) });
  }
  return fields;
}

/** Every interface of a web source file, with its own fields and its bases. */
function webInterfaces(file: string): Interfaces {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const found: Interfaces = new Map();
  for (const statement of source.statements) {
    if (!ts.isInterfaceDeclaration(statement)) continue;
    const bases = (statement.heritageClauses ?? []).flatMap((c) => c.types.map((t) => t.expression.getText(source)));
    found.set(statement.name.text, { fields: fieldsOf(statement.members, source), bases });
  }
  return found;
}

/** Every field of a web interface, those of the interfaces it extends included (unknown names: none). */
function allFields(name: string, known: Interfaces): WebField[] {
  const found = known.get(name);
  return found ? [...found.bases.flatMap((b) => allFields(b, known)), ...found.fields] : [];
}

/** The fields of a shape, or undefined when it names an interface the UI does not have. */
function shapeFields(shape: Shape, known: Interfaces): WebField[] | undefined {
  if (shape.refs.some((r) => !known.has(r))) return undefined;
  return [...shape.refs.flatMap((r) => allFields(r, known)), ...shape.fields];
}

/** What is wrong with one field next to its property schema (a response field: the UI reads it). */
function fieldProblems(at: string, field: WebField, property: JsonSchema, required: Set<string>, request: boolean): string[] {
  if (request) return field.optional && required.has(field.name) ? [`${at}: the API requires it, the UI may leave it out`] : [];
  const problems: string[] = [];
  if (!field.optional && !required.has(field.name)) problems.push(`${at}: the API may leave it out, the UI types it as always there (add ?)`);
  if (nullable(property) && !field.withNull) problems.push(`${at}: the API may send null, the UI's type has no null`);
  return problems;
}

/** Of a value that is one of several API schemas (`anyOf`), the one the web interface is named after. */
function pickAlternative(schema: JsonSchema | undefined, refs: string[]): JsonSchema | undefined {
  const alternatives = [...(schema?.anyOf ?? []), ...(schema?.oneOf ?? [])];
  return alternatives.find((a) => refs.some((r) => a.$ref === `#/components/schemas/${r}`)) ?? schema;
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
  // An object the API does not describe (a job's result: one shape per job kind) has nothing to compare.
  if (object.properties === undefined) return problems;
  const properties = object.properties;
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
    const nested = field.shape ? shapeFields(field.shape, known) : undefined;
    if (field.shape && nested) {
      const value = pickAlternative(field.shape.array ? objectOf(property).items : property, field.shape.refs);
      problems.push(...(value ? disagreements(`${at}${field.shape.array ? '[]' : ''}`, nested, value, request, known) : [`${at}: the API's is not a list`]));
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
    for (const name of own.keys()) {
      const api = apiSchema(name);
      if (api) problems.push(...disagreements(name, allFields(name, known), api.schema, api.request, known));
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
      properties: {
        a: { type: 'string' },
        b: { type: ['string', 'null'] },
        c: { type: 'string' },
        list: { type: 'array', items: item },
        one: { type: 'object', properties: { w: { type: 'string' } }, required: ['w'] },
        result: { type: ['object', 'null'], additionalProperties: {} },
      },
      required: ['a', 'b', 'list', 'one', 'result'],
    };
    const fields: WebField[] = [
      { name: 'a', optional: false, withNull: false },
      { name: 'b', optional: false, withNull: false },
      { name: 'c', optional: false, withNull: false },
      { name: 'd', optional: true, withNull: false },
      { name: 'list', optional: false, withNull: false, shape: { refs: ['Item'], fields: [], array: true } },
      { name: 'one', optional: false, withNull: false, shape: { refs: ['Base'], fields: [{ name: 'z', optional: false, withNull: false }], array: false } },
      // An object the API does not describe: nothing to compare inside.
      { name: 'result', optional: false, withNull: true, shape: { refs: [], fields: [{ name: 'anything', optional: false, withNull: false }], array: false } },
    ];
    const known: Interfaces = new Map([
      ['Item', { fields: [{ name: 'x', optional: false, withNull: false }, { name: 'y', optional: true, withNull: false }], bases: [] }],
      ['Base', { fields: [{ name: 'w', optional: false, withNull: false }], bases: [] }],
    ]);
    expect(disagreements('O', [{ name: 'extra', optional: true, withNull: false }], { type: 'object', properties: {}, additionalProperties: {} })).toEqual([]);
    expect(disagreements('O', [{ name: 'extra', optional: false, withNull: false }], { type: 'object', properties: {}, additionalProperties: {} })).toEqual(["O.extra: not in the API's O"]);
    expect(disagreements('X', fields, schema, false, known)).toEqual([
      "X.b: the API may send null, the UI's type has no null",
      'X.c: the API may leave it out, the UI types it as always there (add ?)',
      "X.d: not in the API's X",
      "X.list[].x: the API may send null, the UI's type has no null",
      "X.list[].y: not in the API's X.list[]",
      "X.one.z: not in the API's X.one",
    ]);
  });

  it("counts the fields of the interfaces an interface extends", () => {
    const known: Interfaces = new Map([
      ['Base', { fields: [{ name: 'w', optional: false, withNull: false }], bases: [] }],
      ['Derived', { fields: [{ name: 'v', optional: false, withNull: false }], bases: ['Base'] }],
    ]);
    expect(allFields('Derived', known).map((f) => f.name)).toEqual(['w', 'v']);
  });
});
