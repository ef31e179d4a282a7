"""An app whose stream kind claims `room:`: the project must refuse to start."""
