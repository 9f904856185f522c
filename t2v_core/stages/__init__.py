"""The pipeline's stages, one module each. Each module ends with its ``STAGE`` declaration
(``t2v_core.stages.base.Stage``); ``t2v_core.pipeline`` collects them into the registry."""
