"""datanet.pipelines."""
