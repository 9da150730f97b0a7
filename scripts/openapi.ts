// `npm run openapi`: writes docs/openapi.json, the API's OpenAPI 3.1 document (test/openapi.test.ts checks it is current).
import { fileURLToPath } from 'node:url';
import { writeOpenApiDocument } from '../src/api/openapi-document.js';

const path = fileURLToPath(new URL('../docs/openapi.json', import.meta.url));
await writeOpenApiDocument(path);
process.stdout.write(`wrote ${path}\n`);
