use schemars::{JsonSchema, generate::SchemaSettings};
use serde::{Serialize, de::DeserializeOwned};

use crate::bindings::toolhost::tool::types::{Behavior, ToolError as WitToolError, ToolSpec};
use crate::{Ctx, ToolError};

type Handler = Box<dyn Fn(&Ctx, &str) -> Result<String, ToolError>>;

/// One tool: a name, a description, typed input and output, and a handler.
pub struct Tool {
    name: &'static str,
    description: &'static str,
    input_schema: fn() -> String,
    output_schema: Option<fn() -> String>,
    behavior: Behavior,
    handler: Handler,
}

impl std::fmt::Debug for Tool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tool")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Tool {
    /// A tool named `name` that runs `handler`.
    ///
    /// The input schema is derived from `I` and the output schema from `O`.
    /// Input that does not deserialise into `I` becomes
    /// [`ToolError::InvalidInput`] naming the path of the bad field. The tool
    /// declares no behaviour until you add it ([`Tool::pure`] and friends).
    pub fn new<I, O>(
        name: &'static str,
        description: &'static str,
        handler: fn(&Ctx, I) -> Result<O, ToolError>,
    ) -> Self
    where
        I: DeserializeOwned + JsonSchema + 'static,
        O: Serialize + JsonSchema + 'static,
    {
        Self {
            name,
            description,
            input_schema: schema_of::<I>,
            output_schema: Some(schema_of::<O>),
            behavior: Behavior::empty(),
            handler: Box::new(move |ctx, input| {
                let input: I = parse_input(input)?;
                let output = handler(ctx, input)?;
                serde_json::to_string(&output)
                    .map_err(|e| ToolError::failed(format!("could not encode the output: {e}")))
            }),
        }
    }

    /// The tool's name.
    pub fn name(&self) -> &str {
        self.name
    }

    /// Declares that the tool changes nothing outside its call.
    pub fn read_only(mut self) -> Self {
        self.behavior |= Behavior::READ_ONLY;
        self
    }

    /// Declares that repeating a call has the same effect as making it once.
    pub fn idempotent(mut self) -> Self {
        self.behavior |= Behavior::IDEMPOTENT;
        self
    }

    /// Declares that the tool talks to the world outside the host.
    pub fn open_world(mut self) -> Self {
        self.behavior |= Behavior::OPEN_WORLD;
        self
    }

    /// Declares that the tool may destroy or overwrite something.
    pub fn destructive(mut self) -> Self {
        self.behavior |= Behavior::DESTRUCTIVE;
        self
    }

    /// Read-only and idempotent: the same input always gives the same output.
    /// The host may cache and speculate such a tool (if its policy also grants
    /// it no network).
    pub fn pure(self) -> Self {
        self.read_only().idempotent()
    }

    /// Run the tool on JSON text, as the host would. Useful in native tests.
    pub fn call_json(&self, input: &str) -> Result<String, ToolError> {
        (self.handler)(&Ctx::new(), input)
    }

    /// The input schema as JSON text.
    pub fn input_schema(&self) -> String {
        (self.input_schema)()
    }
}

fn schema_of<T: JsonSchema>() -> String {
    let mut settings = SchemaSettings::draft2020_12();
    settings.inline_subschemas = true;
    let schema = settings.into_generator().into_root_schema_for::<T>();
    serde_json::to_string(&schema).unwrap_or_else(|_| String::from("{\"type\":\"object\"}"))
}

fn parse_input<I: DeserializeOwned>(input: &str) -> Result<I, ToolError> {
    let mut de = serde_json::Deserializer::from_str(input);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            ToolError::invalid_input(inner)
        } else {
            ToolError::invalid_input(format!("at `{path}`: {inner}"))
        }
    })?;
    de.end().map_err(|e| {
        ToolError::invalid_input(format!("trailing characters after the input: {e}"))
    })?;
    Ok(value)
}

/// The body of the exported `describe`.
pub fn describe(tools: &[Tool]) -> Vec<ToolSpec> {
    tools
        .iter()
        .map(|tool| ToolSpec {
            name: tool.name.to_string(),
            description: tool.description.to_string(),
            input_schema: (tool.input_schema)(),
            output_schema: tool.output_schema.map(|schema| schema()),
            behavior: tool.behavior,
        })
        .collect()
}

/// The body of the exported `invoke`.
pub fn invoke(tools: &[Tool], name: &str, input: &str) -> Result<String, WitToolError> {
    let tool = tools.iter().find(|tool| tool.name == name).ok_or_else(|| {
        let known: Vec<&str> = tools.iter().map(|t| t.name).collect();
        WitToolError::InvalidInput(format!(
            "this component has no tool named `{name}`; it has: {}",
            known.join(", ")
        ))
    })?;
    tool.call_json(input).map_err(WitToolError::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, JsonSchema)]
    struct Add {
        a: i64,
        b: i64,
    }

    #[derive(Serialize, JsonSchema)]
    struct Sum {
        sum: i64,
    }

    fn add(_: &Ctx, input: Add) -> Result<Sum, ToolError> {
        Ok(Sum {
            sum: input.a + input.b,
        })
    }

    fn tools() -> Vec<Tool> {
        vec![Tool::new("add", "Add two integers.", add).pure()]
    }

    #[test]
    fn calls_a_typed_handler() {
        assert_eq!(
            tools()[0].call_json(r#"{"a":2,"b":40}"#).unwrap(),
            r#"{"sum":42}"#
        );
    }

    #[test]
    fn bad_input_names_the_field() {
        let err = tools()[0].call_json(r#"{"a":2,"b":"x"}"#).unwrap_err();
        let ToolError::InvalidInput(message) = err else {
            panic!("wrong kind: {err:?}")
        };
        assert!(message.contains("`b`"), "{message}");
    }

    #[test]
    fn trailing_text_is_invalid_input() {
        let err = tools()[0].call_json(r#"{"a":2,"b":3} x"#).unwrap_err();
        assert!(matches!(err, ToolError::InvalidInput(_)), "{err:?}");
    }

    #[test]
    fn describe_derives_schemas_and_behavior() {
        let specs = describe(&tools());
        assert_eq!(specs.len(), 1);
        let schema: serde_json::Value = serde_json::from_str(&specs[0].input_schema).unwrap();
        assert_eq!(schema["type"], "object");
        assert_eq!(schema["required"], serde_json::json!(["a", "b"]));
        assert!(
            specs[0]
                .behavior
                .contains(Behavior::READ_ONLY | Behavior::IDEMPOTENT)
        );
        assert!(specs[0].output_schema.is_some());
    }

    #[test]
    fn unknown_tool_is_invalid_input() {
        let err = invoke(&tools(), "nope", "{}").unwrap_err();
        assert!(matches!(err, WitToolError::InvalidInput(m) if m.contains("add")));
    }
}
