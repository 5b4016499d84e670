#!/bin/sh
# Vault password "client" for the molecule scenario: the sandbox writes its vault password into its
# inventory (sandbox-only secret). Before create.yml ran (the first destroy), there is nothing to
# decrypt yet, so an empty-handed placeholder keeps ansible-playbook from failing.
pass_file="${MOLECULE_EPHEMERAL_DIRECTORY:?}/sandbox/inventory/.vault_pass"
if [ -r "$pass_file" ]; then
    cat "$pass_file"
else
    echo "no-sandbox-yet"
fi
