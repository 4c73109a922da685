"""Never run: the mldock image serves ``/score`` itself.

Azure ML's local deployments need a code folder with a scoring script even for a custom image
(Azure/azure-sdk-for-python#42995); the SDK mounts this folder and sets ``AZUREML_ENTRY_SCRIPT``,
which the mldock runtime ignores.
"""
