#!/bin/sh
# placeholder-scaffold: replaced by the CLI integration test
exit 1
