/**
 * `/openapi/v2` of the fake kube-apiserver: the definitions of kube-schemas.ts as a Swagger
 * 2.0 document, in JSON or in the protobuf encoding kubectl asks for.
 *
 * Design note: kubectl (1.20 as well as 1.27–1.33) downloads this document before
 * `apply`/`create` and validates every object against it; it accepts only the protobuf
 * form (`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`, gnostic's
 * `openapi.v2.Document`), so the fake encodes it by hand: a handful of message types
 * (Document, Info, Definitions, NamedSchema, Schema, Properties, ItemsItem,
 * AdditionalPropertiesItem, TypeItem, NamedAny, Any), field numbers from gnostic's
 * OpenAPIv2.proto. Vendor extensions travel as YAML text (JSON is YAML). The document has no
 * `paths`, so kubectl sees no server-side `fieldValidation` support and validates on the
 * client, which is what makes a wrong manifest fail in the test. `/openapi/v3` is not served
 * (404, as on servers before 1.24); kubectl falls back to v2.
 */
import { definitions } from './kube-schemas.js';
import type { SchemaNode } from './kube-schemas.js';

/** What kubectl asks for. */
const OPENAPI_V2_PROTOBUF_ACCEPT = 'application/com.github.proto-openapi.spec.v2@v1.0+protobuf';
/** What kube-apiserver labels it with (an `@` is not valid in a Content-Type Go parses). */
export const OPENAPI_V2_PROTOBUF = 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf';

/** The Swagger 2.0 document as JSON. */
export function openApiV2Document(version: string): object {
  return { swagger: '2.0', info: { title: 'Kubernetes', version }, paths: {}, definitions };
}

/** Whether an Accept header asks for the protobuf form. */
export function wantsOpenApiProtobuf(accept: string | undefined): boolean {
  return (accept ?? '').split(',').some((range) => [OPENAPI_V2_PROTOBUF_ACCEPT, OPENAPI_V2_PROTOBUF].includes(range.split(';')[0]!.trim()));
}

/** The document as a protobuf `openapi.v2.Document`. */
export function openApiV2Protobuf(version: string): Buffer {
  const info = message([stringField(1, 'Kubernetes'), stringField(2, version)]);
  const named = Object.entries(definitions).map(([name, node]) => messageField(1, namedSchema(name, node)));
  return message([stringField(1, '2.0'), messageField(2, info), messageField(9, message(named))]);
}

function namedSchema(name: string, node: SchemaNode): Buffer {
  return message([stringField(1, name), messageField(2, schema(node))]);
}

function schema(node: SchemaNode): Buffer {
  const fields: Buffer[] = [];
  if (node.$ref !== undefined) fields.push(stringField(1, node.$ref));
  if (node.format !== undefined) fields.push(stringField(2, node.format));
  for (const required of node.required ?? []) fields.push(stringField(19, required));
  if (node.additionalProperties !== undefined) fields.push(messageField(21, message([messageField(1, schema(node.additionalProperties))])));
  if (node.type !== undefined) fields.push(messageField(22, message([stringField(1, node.type)])));
  if (node.items !== undefined) fields.push(messageField(23, message([messageField(1, schema(node.items))])));
  if (node.properties !== undefined) {
    fields.push(messageField(25, message(Object.entries(node.properties).map(([name, property]) => messageField(1, namedSchema(name, property))))));
  }
  for (const extension of ['x-kubernetes-patch-strategy', 'x-kubernetes-patch-merge-key', 'x-kubernetes-group-version-kind'] as const) {
    const value = node[extension];
    if (value === undefined) continue;
    const any = message([stringField(2, JSON.stringify(value))]);
    fields.push(messageField(31, message([stringField(1, extension), messageField(2, any)])));
  }
  return message(fields);
}

// --- protobuf wire format (length-delimited fields only) ----------------------------------

function varint(value: number): Buffer {
  const bytes: number[] = [];
  let rest = value;
  while (rest >= 0x80) {
    bytes.push((rest & 0x7f) | 0x80);
    rest = Math.floor(rest / 128);
  }
  bytes.push(rest);
  return Buffer.from(bytes);
}

function messageField(field: number, payload: Buffer): Buffer {
  return Buffer.concat([varint((field << 3) | 2), varint(payload.length), payload]);
}

function stringField(field: number, value: string): Buffer {
  return messageField(field, Buffer.from(value, 'utf8'));
}

function message(fields: readonly Buffer[]): Buffer {
  return Buffer.concat(fields);
}
