import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { renderWebhookConfigFile, runWebhookConfig } from '../../../src/cmd/webhook-config.js';
import { KubegateError } from '../../../src/errors.js';

describe('kubegate webhook-config', () => {
  it('prints a kubeconfig whose server is the full authenticate URL, because kube-apiserver POSTs to it as is', () => {
    let text = '';
    runWebhookConfig({}, (written) => (text += written));
    const document = parse(text);
    assert.equal(document.clusters[0].cluster.server, 'http://127.0.0.1:6440/v1/authenticate');
    assert.equal(document['current-context'], 'kubegate-webhook');
    assert.match(text, /--authentication-token-webhook-version=v1/);
  });

  it('embeds a CA for an https webhook and refuses one for plain http', () => {
    const document = parse(renderWebhookConfigFile({ url: 'https://127.0.0.1:6440/v1/authenticate', caPem: 'PEM' }));
    assert.equal(Buffer.from(document.clusters[0].cluster['certificate-authority-data'], 'base64').toString(), 'PEM');
    assert.throws(() => renderWebhookConfigFile({ url: 'http://127.0.0.1:6440/v1/authenticate', caPem: 'PEM' }), KubegateError);
    assert.throws(() => renderWebhookConfigFile({ url: 'ftp://x' }), KubegateError);
  });
});
