// graphql-schema-linter's configuration, for tests/test_schema_lint.py: every built-in rule,
// as it comes, but those in `disabled`, each with its reason. The test fails when a disabled
// rule would find nothing any more (then enable it here) and when the others find anything.
const fs = require("fs");
const path = require("path");

const disabled = {
  "type-fields-sorted-alphabetically":
    "A type's fields are in the order they are declared, which groups what belongs together " +
    "(a Connection's totalCount, pageInfo, nodes, edges; a delivery's status, attempts, " +
    "then its times). GraphiQL's explorer and a client's generated types search by name.",
  "interface-fields-sorted-alphabetically":
    "MutationError's fields read as its error does: code, message, then the field at fault.",
  "input-object-fields-sorted-alphabetically":
    "An input's fields go in the order a person fills them in: what to change first " +
    "(deviceId, pathwayId), then the values, then reason and idempotencyKey.",
  "enum-values-sorted-alphabetically":
    "An enum's values are in the domain's order, which the order carries: a delivery is " +
    "PENDING, then DELIVERED or FAILED; a firmware ACTIVE, then WITHDRAWN; the Party " +
    "categories and device types as the SEC lists them.",
};

const rulesFolder = path.join(__dirname, "node_modules", "graphql-schema-linter", "lib", "rules");
const builtIn = fs
  .readdirSync(rulesFolder)
  .filter((file) => file.endsWith(".js"))
  .map((file) => file.slice(0, -3).replace(/_/g, "-"));

module.exports = {
  rules: builtIn.filter((rule) => !(rule in disabled)),
  disabled,
};
