from gzllava.export.llava import save_as_llava, to_llava_config, to_llava_model, to_llava_processor  # noqa: F401  (moved)
