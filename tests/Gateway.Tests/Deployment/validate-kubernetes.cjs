// Validates Kubernetes manifests against the API's own schemas, as bundled in the npm package kubernetes-models.
// Usage: node validate-kubernetes.cjs <modules folder with kubernetes-models and yaml> <manifest folder>
// Each document of each *.yaml (but kustomization.yaml) must be a kind the models know and pass its schema; every file
// a kustomization.yaml names must exist. Prints one line per document; exits 1 on the first problem found.
const fs = require("fs");
const path = require("path");
const [modules, folder] = process.argv.slice(2);
const YAML = require(path.join(modules, "yaml"));
let failed = false;
const kustomization = path.join(folder, "kustomization.yaml");
if (fs.existsSync(kustomization)) {
  for (const resource of YAML.parse(fs.readFileSync(kustomization, "utf8")).resources || []) {
    if (!fs.existsSync(path.join(folder, resource))) {
      console.log(`kustomization.yaml: ${resource} does not exist`);
      failed = true;
    }
  }
}
for (const file of fs.readdirSync(folder).filter(f => f.endsWith(".yaml") && f !== "kustomization.yaml").sort()) {
  for (const document of YAML.parseAllDocuments(fs.readFileSync(path.join(folder, file), "utf8"))) {
    if (document.errors.length > 0) {
      console.log(`${file}: ${document.errors[0].message}`);
      failed = true;
      continue;
    }
    const manifest = document.toJSON();
    if (!manifest) continue;
    const [group, version] = manifest.apiVersion.includes("/") ? manifest.apiVersion.split("/") : ["", manifest.apiVersion];
    const module = path.join(modules, "kubernetes-models", group ? `${group}/${version}` : version, manifest.kind);
    try {
      const Model = require(module)[manifest.kind];
      new Model(manifest).validate();
      console.log(`${file}: ${manifest.kind} ${manifest.metadata.name} valid`);
    } catch (error) {
      console.log(`${file}: ${manifest.kind} ${manifest.metadata && manifest.metadata.name}: ${error.message}`);
      failed = true;
    }
  }
}
process.exit(failed ? 1 : 0);
