// Starts `tl lsp` for .tl documents: diagnostics as you type, hover, go to definition.
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const command = vscode.workspace.getConfiguration("tensorlogic").get("server.path", "tl");
  const server = { command, args: ["lsp"] };
  client = new LanguageClient(
    "tensorlogic",
    "Tensor Logic",
    { run: server, debug: server },
    { documentSelector: [{ scheme: "file", language: "tensorlogic" }] }
  );
  context.subscriptions.push({ dispose: () => client && client.stop() });
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
