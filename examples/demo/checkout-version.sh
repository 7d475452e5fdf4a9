#!/bin/sh
# Prints the version checkout runs now: the provider's live state and read-back.
cat "$(dirname "$0")/state/version"
