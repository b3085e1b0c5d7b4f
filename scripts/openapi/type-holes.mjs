// Reports the type holes in openapi-typescript's output: places where a body type that a
// client relies on came out as `unknown`/`any` (a schema the generator could not read, such
// as a oneOf/anyOf branch with no type) or as an object that can hold nothing.
//
// Usage: node type-holes.mjs FILE.d.ts   (exit 1 and one line per hole when there are any)
//
// It walks the TypeScript syntax tree instead of grepping, because the word "unknown" also
// appears in descriptions, and because two uses of `unknown` are deliberate and fine:
//   - an index signature, `[name: string]: unknown`: openapi-typescript puts one in every
//     response's headers (a server may send more headers than it documents), and a schema
//     with `additionalProperties: true` is a free-form object, Record<string, unknown>;
//   - a property listed in FREE_FORM below, documented as any JSON value on purpose.
import { readFileSync } from "node:fs";
import ts from "typescript";

// Dotted paths (from the top-level declaration down the property names) whose `unknown`
// is the documented type: the 404 envelope's `details` is free-form detail of any shape.
const FREE_FORM = new Set(["components.schemas.NotFoundEnvelope.details"]);

const file = process.argv[2];
if (!file) {
  console.error("usage: node type-holes.mjs FILE.d.ts");
  process.exit(2);
}
const source = ts.createSourceFile(file, readFileSync(file, "utf8"), ts.ScriptTarget.Latest, true);
const holes = [];

function pathOf(node) {
  const names = [];
  for (let n = node; n; n = n.parent) {
    if ((ts.isPropertySignature(n) || ts.isInterfaceDeclaration(n) || ts.isTypeAliasDeclaration(n)) && n.name) {
      names.unshift(n.name.getText(source).replace(/^["']|["']$/g, ""));
    }
  }
  return names.join(".");
}

function report(node, what) {
  const { line } = source.getLineAndCharacterOfPosition(node.getStart(source));
  const text = source.text.split("\n")[line].trim();
  holes.push(`${file}:${line + 1}: ${what} in ${pathOf(node)}: ${text}`);
}

function visit(node) {
  if (node.kind === ts.SyntaxKind.AnyKeyword) {
    report(node, "any");
  } else if (node.kind === ts.SyntaxKind.UnknownKeyword) {
    const freeForm = ts.isIndexSignatureDeclaration(node.parent) ||
      (ts.isPropertySignature(node.parent) && FREE_FORM.has(pathOf(node)));
    if (!freeForm) report(node, "unknown");
  } else if (ts.isTypeReferenceNode(node) && node.typeName.getText(source) === "Record" &&
    node.typeArguments?.[1]?.kind === ts.SyntaxKind.NeverKeyword && !ts.isTypeAliasDeclaration(node.parent)) {
    // `type: object` with no properties: the generated type accepts no field at all. (The
    // top-level aliases `webhooks` and `$defs` are Record<string, never> when there are none.)
    report(node, "Record<string, never>");
  }
  ts.forEachChild(node, visit);
}
visit(source);

if (holes.length > 0) {
  console.error(`${holes.length} type hole(s) in the TypeScript generated from api/openapi.yaml:`);
  for (const h of holes) console.error("  " + h);
  process.exit(1);
}
