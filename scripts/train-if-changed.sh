#!/usr/bin/env bash
# Trains the Rasa model into var/rasa/bot.tar.gz when the training inputs (config.yml,
# domain.yml, bot/data/, and the project code the model carries: the normaliser, the
# safety net) differ from those of the last training. Prints how long the training took.
set -euo pipefail
out=var/rasa
inputs=(config.yml domain.yml bot/normaliser.py bot/wording.py bot/safety_net.py bot/emergency.py)
inputs_hash=$( (sha256sum "${inputs[@]}"; find bot/data -type f -print0 | sort -z | xargs -0 sha256sum) | sha256sum | cut -d' ' -f1)
if [[ -f $out/bot.tar.gz && "$(cat $out/bot.inputs 2>/dev/null)" == "$inputs_hash" ]]; then
  echo "Rasa model is up to date ($out/bot.tar.gz)."
  exit 0
fi
echo "Training the Rasa model (under 3 minutes on 2 idle cores)..."
mkdir -p $out
started=$(date +%s)
.venv-rasa/bin/rasa train --data bot/data --domain domain.yml --config config.yml \
  --out $out --fixed-model-name bot
echo "rasa_training_seconds: $(( $(date +%s) - started ))"
echo "$inputs_hash" > $out/bot.inputs
