"""What /predict takes as JSON and sends back."""

from pydantic import BaseModel, Field

from store.tables import MAX_INT32

TOP_K_DEFAULT, TOP_K_MAX = 3, 100  # how many best classes /predict lists


MAX_IMAGES_PER_REQUEST = 256  # the schema's cap; MAX_IMAGES_PER_REQUEST (settings) may only lower it


class TopK(BaseModel):
    label: str
    probability: float


class FileError(BaseModel):
    status: int = Field(description="The HTTP status this file alone would get: 400, 413 or 415.")
    message: str = Field(description="What is wrong with the file (its limit, its format) and what to do.")


class Prediction(BaseModel):
    """One uploaded file's answer: its classes, or (`error`) why it could not be read; the other files of
    the request are answered all the same."""

    filename: str
    label: str | None = None
    class_index: int | None = None
    probabilities: dict[str, float] | None = None
    top_k: list[TopK] | None = None
    error: FileError | None = None


class PredictionsPublic(BaseModel):
    job_id: int = Field(description="The job whose model answered.")
    model: str
    predictions: list[Prediction] = Field(
        description="In the order of the uploads; a file that could not be read has an `error` instead of classes "
        "(when no file could be read, the request gets that error's status)."
    )


class PredictJSON(BaseModel):
    model_config = {"extra": "forbid"}

    images: list[str] = Field(
        min_length=1,
        max_length=MAX_IMAGES_PER_REQUEST,
        description="Base64-encoded image files (PNG, JPEG, BMP, GIF, WebP).",
    )
    job_id: int | None = Field(
        None, ge=1, le=MAX_INT32, description="The model to use; default: the best succeeded job."
    )
    top_k: int = Field(TOP_K_DEFAULT, ge=1, le=TOP_K_MAX)
