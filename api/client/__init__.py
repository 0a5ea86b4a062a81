"""The `stagekeeper` command's client side: subcommands that talk to a server over the HTTP API."""
